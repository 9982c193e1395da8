"""Promotion gates read from the ledger (pure): `requires` and `soak`.

`requires = "staging"` means every function being promoted must be live in
staging with the same bytes (digest), by staging's ledger; `soak = "1h"`
means each must have been live there for at least that long. Alarms need
AWS and are checked by the executor. `enforce` turns failed checks into
`GateRefused` (exit 9) unless the run is forced with a reason.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence

import attrs

from builder.config import Environment
from builder.errors import GateRefused, UsageError
from builder.promote.ledger import LiveFunction, live_state
from builder.promote.records import LedgerRecord, human_duration, parse_time

REQUIRES = "requires"
SOAK = "soak"


@attrs.frozen
class GateCheck:
    name: str  # "requires" | "soak" (the executor adds "alarms")
    ok: bool
    detail: str

    def to_json(self) -> dict:
        return attrs.asdict(self)


def check_gates(
    env: Environment,
    *,
    digests: Mapping[str, str],
    artifact: str,
    required_records: Sequence[LedgerRecord] | None,
    now: dt.datetime,
) -> list[GateCheck]:
    """One check per gate and function being promoted (`digests`: function -> sha256); none without gates.

    `required_records` is the ledger of `env.requires`; None means it could
    not be read, which fails the gate rather than passing it.
    """
    if not env.requires:
        return []
    required = env.requires
    if required_records is None:
        return [GateCheck(REQUIRES, False, f"the ledger of {required} could not be read")]
    live = live_state(required_records)
    checks: list[GateCheck] = []
    for function in sorted(digests):
        requires = _requires(required, live.get(function), function, digests[function], artifact)
        checks.append(requires)
        if requires.ok and env.soak > 0:
            checks.append(_soak(required, live[function], env.soak, now))
    return checks


def _requires(required: str, live: LiveFunction | None, function: str, digest: str, artifact: str) -> GateCheck:
    wanted = f"{function} sha256 {digest[:12]}.. ({artifact})"
    if live is None or live.digest is None:
        return GateCheck(REQUIRES, False, f"{required} has not run {wanted}: {function} was never promoted there")
    if live.digest != digest:
        return GateCheck(REQUIRES, False,
                         f"{required} has not run {wanted}: it runs sha256 {live.digest[:12]}.. ({live.artifact or '?'})")
    return GateCheck(REQUIRES, True, f"{required} runs {wanted} since {live.since}")


def _soak(required: str, live: LiveFunction, soak: int, now: dt.datetime) -> GateCheck:
    elapsed = (now - parse_time(live.since)).total_seconds()
    if elapsed >= soak:
        return GateCheck(SOAK, True, f"{live.function} has been live in {required} for {human_duration(elapsed)} "
                                     f"(soak {human_duration(soak)})")
    remaining = human_duration(math.ceil(soak - elapsed))
    return GateCheck(SOAK, False, f"{live.function} has been live in {required} for {human_duration(elapsed)}, "
                                  f"soak is {human_duration(soak)}: {remaining} to go")


def failed(checks: Iterable[GateCheck]) -> list[GateCheck]:
    return [c for c in checks if not c.ok]


def refusal_message(checks: Iterable[GateCheck]) -> str:
    """One line naming every failed gate, e.g. `gates refused: requires: staging has not run ...; soak: ...`."""
    failures = failed(checks)
    if not failures:
        return "every gate passed"
    noun = "gate" if len(failures) == 1 else "gates"
    return f"{noun} refused: " + "; ".join(f"{c.name}: {c.detail}" for c in failures)


def enforce(checks: Sequence[GateCheck], *, force: bool, reason: str | None) -> None:
    """Raise GateRefused listing every failed gate, unless forced; `--force` always needs `--reason`."""
    if force and not (reason or "").strip():
        raise UsageError("--force needs --reason TEXT", hint="Say why the gates are overridden; the reason is recorded in the ledger.")
    if failed(checks) and not force:
        raise GateRefused(refusal_message(checks))
