"""The package's version (kept apart so any part of the package can read it without importing the facade)."""

__version__ = "0.1.0"
