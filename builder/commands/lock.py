"""`relay lock`: resolve requirements into hashed locks, and how the result reads for people."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from builder.commands.options import Context, json_option
from builder.commands.output import emit_json, reporter_for
from builder.errors import LockStale
from builder.textfmt import table

if TYPE_CHECKING:
    from builder.lock.results import LockOutcome, LockResult


@click.command()
@click.argument("names", nargs=-1)
@click.option("--check", is_flag=True, help="Fail (exit 6) when a lock is missing or stale; write nothing.")
@click.option("--resolver", type=click.Choice(["auto", "pip-tools", "uv"]), default="auto", show_default=True,
              help="auto uses uv when installed, else pip-compile.")
@click.option("--upgrade", is_flag=True, help="Allow newer versions than the current lock pins.")
@json_option
@click.pass_obj
def lock(obj: Context, names: tuple[str, ...], check: bool, resolver: str, upgrade: bool, as_json: bool) -> None:
    """Resolve each function's and layer's requirements .in into a hashed lock for the Lambda target."""
    from builder.lock.resolve import lock_project

    result = lock_project(obj.project(), names, check=check, resolver=resolver, upgrade=upgrade,
                          reporter=reporter_for(as_json))
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo(lock_summary(result))
    try:
        result.raise_for_check()
    except LockStale as exc:
        exc.reported = as_json  # the result document above already says which locks
        raise


def lock_summary(result: LockResult) -> str:
    """One row per lock (status, target, lock file, detail), then the resolver's notes."""
    if not result.outcomes:
        return "Nothing to lock: no function or layer has requirements."
    rows = [[o.status, o.target.label, o.relative(o.target.lock), _detail(o)] for o in result.outcomes]
    lines = [table(rows, ["status", "target", "lock", "detail"])]
    lines.extend(f"note: {note}" for note in result.notes)
    return "\n".join(lines)


def _detail(outcome: LockOutcome) -> str:
    if outcome.reason:
        return outcome.reason
    parts = [f"{len(outcome.packages)} packages"]
    if outcome.resolver:
        parts.append(f"{outcome.resolver} under {outcome.python}")
    return ", ".join(parts)
