"""Human renderings of library results, one module per area; `--json` uses the results' own `to_json()`."""
