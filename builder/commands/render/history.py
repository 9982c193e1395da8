"""`relay history` as people read it: one row per run or refusal, newest first."""

from __future__ import annotations

from builder.commands.output import width
from builder.commands.render.text import fit, table
from builder.promote.history import RUNNING, SUPERSEDED, History, HistoryEntry
from builder.promote.records import REFUSED, LedgerRecord, human_duration


def history_summary(history: History) -> str:
    if not history.entries and not history.flagged:
        return f"No ledger records for {history.app} in {history.env}."
    rows = [_row(e) for e in history.entries]
    rows += [[str(u.seq) if u.seq is not None else "-", "", "", "", "", u.check.upper(), u.detail]
             for u in history.unreadable]
    more = "\n(older entries exist: raise --limit)" if history.truncated else ""
    text = table(rows, ["seq", "when (UTC)", "who", "event", "from -> to", "status", "reason, notes"]) + more
    if history.problems:
        text += fit(f"\n\nWARNING: this ledger cannot be trusted ({'; '.join(history.problems)}); gates that require "
                 f"{history.env} refuse until it is repaired.\n{history.repair}", width())
    elif history.flagged:
        text += fit(f"\n\nFlagged, acknowledged by a forced run or not replayed: {'; '.join(history.flagged)}", width())
    return text


def _row(entry: HistoryEntry) -> list[str]:
    first, last = entry.first, entry.last
    seq = f"{first.seq}..{last.seq}" if last else str(first.seq)
    when = first.at.replace("T", " ").rstrip("Z").split(".")[0]
    status = entry.state
    if entry.duration is not None:
        status += f" after {human_duration(entry.duration)}"
    if entry.state == RUNNING:
        status += f" (lease until {first.lease_until})"
    if entry.state == SUPERSEDED:
        status += f" by seq {entry.superseded_by}"
    notes = [f"FLAGGED {check}" for check in entry.checks]
    if first.forced:
        notes.append("FORCED")
    if first.supersedes:
        notes.append(f"supersedes seq {first.supersedes}")
    reason = entry.outcome.reason
    if last is not None and last.reason and last.reason != first.reason and first.reason:
        reason = f"{first.reason}; {last.reason}"
    if reason:
        notes.append(reason)
    moved = [c.function for c in entry.outcome.changes if c.moved]
    if moved and entry.state != REFUSED:
        notes.append(f"functions: {', '.join(moved)}")
    ci = first.who.ci if first.who is not None else None
    if ci is not None and (ci.run_url or ci.run_id):
        notes.append(f"run {ci.run_url or ci.run_id}")
    return [seq, when, who_text(first), first.event,
            f"{first.from_version or '-'} -> {first.to_version or '-'}", status, "; ".join(notes)]


def who_text(record: LedgerRecord) -> str:
    """Who started a run, as a person reads it: the CI actor and system, the base credentials, the role session.

    `octocat (GitHub Actions) as user/ci-deployer`, `user/alice as assumed-role/relay-deployer/relay-shop-prod`;
    a record from before relay recorded who (no `who`): the role session alone.
    """
    who, session = record.who, short_actor(record.actor)
    if who is None:
        return session
    base = short_actor(who.base_arn) if who.base_arn else None
    if who.ci is not None:
        person = f"{who.ci.actor or 'unknown'} ({who.ci.name})"
        return f"{person} as {base}" if base else person
    if base and base != session:
        return f"{base} as {session}"
    return base or session


def short_actor(arn: str) -> str:
    """`assumed-role/relay-deployer/ci` for `arn:aws:sts::222222222222:assumed-role/relay-deployer/ci`."""
    parts = arn.split(":", 5)
    return parts[5] if len(parts) == 6 and parts[0] == "arn" else arn
