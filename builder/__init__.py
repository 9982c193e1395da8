"""relay: build AWS Lambda bundles once, promote the same bytes everywhere."""

__version__ = "0.1.0"
