"""seized: the service that stands at a seized domain."""

__version__ = "0.1.0"
