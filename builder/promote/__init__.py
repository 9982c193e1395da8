"""Promotion: move a published, verified release into an environment's account.

Plan, then apply (shared/DESIGN.md, "Promotion"). The pieces:

- `state`: the read-only view of one environment (functions, versions, aliases, layers).
- `plan`: the pure planner; `instructions`: the typed plan it returns.
- `executor`: applies a plan (prepare every function, then move aliases);
  `canary`: alias moves in weighted steps; `blobs`: verified code bytes.
- `promoter`: `relay promote` (verify, gates, plan, apply, record); `rollback`, `status`.
- `gates`: requires, soak and alarms in one shape, and the one `--force --reason` rule.
- `ledger`: the append-only store per app and environment (conditional puts, leases);
  `ledger_replay` reads what was live from it; `history` pairs its records for people;
  `records`: its frozen records; `outcome`: closing a run's record.
- `factory`: wires sessions, stores and clocks for the commands.
"""
