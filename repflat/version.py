"""repflat's version: recorded in every run.json and said by `repflat --version`.

A module of its own so that what records it (the run directory's writer) does not import
the package facade, which imports the features reader."""
__version__ = "0.1.0"
