"""Pure functions per job: arrays and models in, arrays out. No paths, no printing."""
