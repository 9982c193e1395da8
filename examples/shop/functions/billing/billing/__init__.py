"""The billing function."""
