"""`relay rollback` as people read it: the plan, what was left alone, where the aliases went, the ledger."""

from __future__ import annotations

from builder.commands.render.promote import plan_summary
from builder.promote.rollback import RollbackResult


def rollback_summary(result: RollbackResult) -> str:
    plan = result.plan
    lines = [plan_summary(plan)]
    if result.skipped:
        lines += ["", "Left alone: " + "; ".join(result.skipped)]
    if result.status == "unchanged":
        lines.append("\nNothing to do: every alias already points at its rollback target.")
    else:
        moved = ", ".join(f"{f}:{v}" for f, v in sorted(result.versions.items()))
        lines.append(f"\nRolled back {plan.app} in {plan.env}: {moved}")
    if result.record is not None:
        lines.append(f"Recorded in the ledger (seq {result.record.seq}).")
    elif result.ledger_problem:
        lines.append(f"WARNING: the ledger record could not be written: {result.ledger_problem}")
    return "\n".join(lines)
