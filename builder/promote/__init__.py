"""Promotion: move a published, verified release into an environment's account.

Plan, then apply (shared/DESIGN.md, "Promotion"). The pieces:

- `records`: the ledger's frozen records (`LedgerRecord`, `FunctionChange`).
- `ledger`: the append-only ledger per app and environment in the registry,
  written with conditional puts; `live_state` / `previous_state` replay it.
- `gates`: pure checks of `requires` and `soak` from the required
  environment's ledger; `enforce` turns failures into `GateRefused`.
- `diff`: what changed between two releases (`relay diff`).
- `iam`: least-privilege policy documents (`relay iam-policy`).
- remote state, planner, executor, canary, rollback and status read and
  change the Lambda side.
"""
