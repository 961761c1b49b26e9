"""mediatool: make article archives own their images."""

__version__ = "0.1.0"
