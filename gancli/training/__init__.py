"""Training: the loop, the data pipeline, degradations and losses. No CLI code."""
