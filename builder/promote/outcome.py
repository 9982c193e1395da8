"""Closing a run's ledger record with its outcome, for promote and rollback alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from builder.errors import AwsError, RaceLost, RelayError
from builder.promote.instructions import Plan
from builder.promote.ledger import Ledger
from builder.promote.records import SUCCEEDED, FunctionChange, LedgerRecord


def close_after_failure(ledger: Ledger, opened: LedgerRecord, exc: BaseException, *, status: str,
                        changes: Sequence[FunctionChange] | None = None) -> None:
    """Record the failed run; if even that fails, say so on the error rather than hide the first failure."""
    reason = exc.message if isinstance(exc, RelayError) else f"{type(exc).__name__}: {exc}"
    try:
        ledger.close(opened, status=status, changes=changes, reason=reason)
    except RelayError as lost:
        if isinstance(exc, RelayError):
            exc.message += (f" (and its {status!r} ledger record could not be written: {lost.message}; "
                            f"seq {opened.seq} stays open until {opened.lease_until})")


def close_after_success(ledger: Ledger, opened: LedgerRecord, plan: Plan, versions: Mapping[str, str]) -> LedgerRecord:
    try:
        return ledger.close(opened, status=SUCCEEDED, changes=plan.changes(versions))
    except RaceLost as exc:
        # Another run took the environment over (this run's lease ran out) or closed its record: it no longer
        # holds the environment, so its outcome is not recorded (exit 10); the aliases show what is there.
        raise RaceLost(f"{plan.event} of {plan.app} {plan.to_version or ''} in {plan.env} was applied, but this run "
                       f"no longer holds the environment: {exc.message}",
                       hint=f"Check `relay status` and `relay history --env {plan.env}`.") from exc
    except RelayError as exc:
        raise AwsError(
            f"{plan.event} of {plan.app} {plan.to_version or ''} in {plan.env} was applied, but its ledger record "
            f"could not be written: {exc.message}",
            hint=f"The aliases are moved (`relay status`). Ledger seq {opened.seq} stays open until {opened.lease_until}; "
                 "rerun the same command afterwards to record it.",
        ) from exc
