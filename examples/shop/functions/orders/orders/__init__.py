"""The orders function."""
