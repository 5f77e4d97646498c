"""storeloop: a self-hosted growth engine for online stores."""

__version__ = "0.1.0"
