"""The release engine of km, the Kilometers CLI."""

__all__ = ["__version__"]
__version__ = "0.1.0"
