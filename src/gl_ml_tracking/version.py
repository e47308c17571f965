"""The package's version, in a module of its own so that anything may read it
without importing the package face (and the extension with it)."""

__version__ = "0.1.0"
