"""cxbot: the platform-neutral core."""

__version__ = "0.1.0"
