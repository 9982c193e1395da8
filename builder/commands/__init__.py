"""Thin click commands, one module per area; `builder.cli` registers them."""
