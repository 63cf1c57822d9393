"""tre: a privacy-preserving Trusted Research Environment."""

__version__ = "0.1.0"
