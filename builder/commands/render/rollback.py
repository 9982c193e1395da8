"""`relay rollback` as people read it: the plan, what was left alone, where the aliases went, $LATEST, the ledger."""

from __future__ import annotations

from builder.commands.render.promote import plan_summary
from builder.promote.rollback import RollbackResult


def rollback_summary(result: RollbackResult, *, width: int | None = None, plan_shown: bool = False) -> str:
    """The plan (unless it was shown before it was applied), what was left alone, and what happened."""
    plan = result.plan
    lines = [] if plan_shown else [plan_summary(plan, width=width)]
    if result.skipped:
        lines += ["", "Left alone: " + "; ".join(result.skipped)]
    if result.status == "planned":
        lines.append("\nDry run: nothing was changed (no alias moved, $LATEST untouched, no ledger record).")
        return "\n".join(lines).lstrip("\n")
    if result.status == "unchanged":
        lines.append("\nNothing to do: every alias already points at its rollback target.")
    else:
        moved = ", ".join(f"{f}:{v}" for f, v in sorted(result.versions.items()))
        lines.append(f"\nRolled back {plan.app} in {plan.env}: {moved}")
    if result.latest:
        restored = ", ".join(f"{fn} ({what})" for fn, what in sorted(result.latest.items()))
        lines.append(f"$LATEST put back as well, so callers that invoke the function unqualified roll back too: {restored}")
    elif not result.latest_problems:
        lines.append("$LATEST already holds the rolled-back code: unqualified callers run it too.")
    for problem in result.latest_problems:
        lines.append(f"WARNING: $LATEST not put back, unqualified callers still run the newer code: {problem}")
    if result.record is not None:
        lines.append(f"Recorded in the ledger (seq {result.record.seq}).")
    elif result.ledger_problem:
        lines.append(f"WARNING: the ledger record could not be written: {result.ledger_problem}")
    return "\n".join(lines).lstrip("\n")
