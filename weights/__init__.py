"""The weights shipped with gancli (installed as the package `gancli.weights`); see README.md and manifest.json."""
