"""The notify function."""
