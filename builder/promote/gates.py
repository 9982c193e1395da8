"""Promotion gates, in one shape: each gate checks a context and returns results with their evidence.

A gate (`Gate`) has a name and `check(context)`, which returns one
`GateResult` per subject it looked at (a function, an alarm): passed or
refused, the evidence that decided it, and a message. The gates today:

- `RequiresGate` (`requires = "staging"`): every function being promoted is
  live in staging with the same bytes (digest), by staging's ledger, and
  staging's alias actually serves those bytes (every version it routes to,
  read from staging's account: `required_served`); a rollback whose record
  could not be written leaves the ledger behind, and the facts win;
- `SoakGate` (`soak = "1h"`): each has been live there at least that long;
- `AlarmsGate` (`alarms = [...]`): every alarm exists and none is in ALARM.
  The canary watches the same gate between its steps (`firing()`).

`gates_for(env, alarms=...)` builds an environment's gates from its config,
`evaluate(gates, context)` runs them, `refusal_message` words a refusal, and
`Override` is the one `--force --reason` rule: a forced run needs a reason,
and a refusal raises `GateRefused` (exit 9) unless the run is forced.
`GateResult` itself lives in `records` because ledger records keep it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import attrs

from builder.config import Environment
from builder.errors import GateRefused, UsageError
from builder.frozen import to_tuple
from builder.promote.ledger_replay import LiveFunction, live_state
from builder.promote.records import GateResult, LedgerRecord, format_time, human_duration, parse_time

if TYPE_CHECKING:
    from builder.aws.cloudwatch import AlarmState, CloudWatch

REQUIRES = "requires"
SOAK = "soak"
ALARMS = "alarms"

FORCE_NEEDS_REASON = "--force needs --reason TEXT"
_FORCE_HINT = "Say why with --reason TEXT (for example an incident number); the reason is recorded in the ledger."


@attrs.frozen
class GateContext:
    """What the gates of one promotion look at: what is promoted, when, and the required environment's ledger."""

    digests: Mapping[str, str]  # function -> bundle sha256 being promoted
    artifact: str  # the release version being promoted ("1.1.0")
    now: dt.datetime
    # The ledger of `env.requires`; None means it could not be read, which refuses rather than passes.
    required_records: Sequence[LedgerRecord] | None = None
    # What reading that ledger found wrong (a record unsigned, edited, out of chain, missing, foreign):
    # any problem makes `requires` and `soak` refuse (fail closed), with `required_repair` as the way out.
    required_problems: Sequence[str] = attrs.field(default=(), converter=to_tuple)
    required_repair: str = ""
    # What the required environment's aliases serve, read from its account: function -> ((Lambda version, sha256
    # hex of its code), ...), the main version first, then the weighted ones; () when it has no alias.
    # None with no `required_served_problem`: not read (not checked); a problem refuses (fail closed).
    required_served: Mapping[str, tuple[tuple[str, str], ...]] | None = None
    required_served_problem: str | None = None
    required_live: Mapping[str, LiveFunction] | None = attrs.field(init=False, eq=False, repr=False)

    @required_live.default
    def _replay(self) -> Mapping[str, LiveFunction] | None:
        return None if self.required_records is None else live_state(self.required_records)


class Gate(Protocol):
    """One gate: a name, and one result per subject it checked."""

    @property
    def name(self) -> str: ...

    def check(self, context: GateContext) -> Sequence[GateResult]: ...


@attrs.frozen
class RequiresGate:
    """Every function being promoted runs, by the required environment's ledger, the same bytes."""

    required: str  # the environment that must have run it first
    name: str = attrs.field(default=REQUIRES, init=False)

    def check(self, context: GateContext) -> Sequence[GateResult]:
        if context.required_problems:
            return (_untrusted(REQUIRES, self.required, context),)
        live = context.required_live
        if live is None:
            return (GateResult(REQUIRES, False, f"the ledger of {self.required} could not be read",
                               evidence={"env": self.required}),)
        results = []
        for function in sorted(context.digests):
            result = self._one(function, context.digests[function], live.get(function), context.artifact)
            if result.ok:
                result = self._served(result, function, context.digests[function], context)
            results.append(result)
        return tuple(results)

    def _served(self, result: GateResult, function: str, digest: str, context: GateContext) -> GateResult:
        """The ledger's word checked against what the required environment's alias serves (its account's facts)."""
        evidence = dict(result.evidence or {})
        if context.required_served_problem is not None:
            evidence["served"] = None
            return GateResult(REQUIRES, False, f"{self.required}'s ledger says it runs {function} sha256 {digest[:12]}.., "
                                               f"but what it serves could not be read: {context.required_served_problem}",
                              function, evidence)
        if context.required_served is None:
            return result
        served = context.required_served.get(function, ())
        evidence["served"] = ", ".join(f"version {v}: sha256 {sha}" for v, sha in served)
        if not served:
            return GateResult(REQUIRES, False, f"{self.required} serves nothing for {function} (no alias), not the "
                                               f"release's sha256 {digest[:12]}..", function, evidence)
        other = next(((v, sha) for v, sha in served if sha != digest), None)
        if other is not None:
            version, sha = other
            return GateResult(REQUIRES, False, f"{self.required} serves sha256 {sha[:12]}.. for {function} (Lambda version "
                                               f"{version}), not the release's {digest[:12]}.. (its ledger says otherwise: "
                                               "a change made without a ledger record, such as a rollback while the "
                                               "registry was out of reach)", function, evidence)
        versions = ", ".join(v for v, _ in served)
        return GateResult(REQUIRES, True, f"{result.detail}, and its alias serves those bytes (version {versions})",
                          function, evidence)

    def _one(self, function: str, digest: str, live: LiveFunction | None, artifact: str) -> GateResult:
        wanted = f"{function} sha256 {digest[:12]}.. ({artifact})"
        evidence = {"env": self.required, "digest": digest, "live_digest": live.digest if live else None,
                    "live_artifact": live.artifact if live else None, "live_since": live.since if live else None}
        if live is None or live.digest is None:
            return GateResult(REQUIRES, False, f"{self.required} has not run {wanted}: {function} was never promoted there",
                              function, evidence)
        if live.digest != digest:
            return GateResult(REQUIRES, False, f"{self.required} has not run {wanted}: it runs sha256 "
                                               f"{live.digest[:12]}.. ({live.artifact or '?'})", function, evidence)
        return GateResult(REQUIRES, True, f"{self.required} runs {wanted} since {live.since}", function, evidence)


@attrs.frozen
class SoakGate:
    """Each function has run the same bytes in the required environment for at least `soak` seconds.

    A function the required environment does not run with these bytes has
    nothing to soak: `RequiresGate` refuses it, and this gate says nothing.
    """

    required: str
    soak: int  # seconds
    name: str = attrs.field(default=SOAK, init=False)

    def check(self, context: GateContext) -> Sequence[GateResult]:
        if context.required_problems:
            return (_untrusted(SOAK, self.required, context),)
        live = context.required_live or {}
        results = []
        for function in sorted(context.digests):
            current = live.get(function)
            if current is not None and current.digest == context.digests[function]:
                results.append(self._one(current, context.now))
        return tuple(results)

    def _one(self, live: LiveFunction, now: dt.datetime) -> GateResult:
        elapsed = (now - parse_time(live.since)).total_seconds()
        evidence = {"env": self.required, "digest": live.digest, "live_since": live.since, "now": format_time(now),
                    "elapsed_seconds": int(elapsed), "soak_seconds": self.soak}
        so_far = f"{live.function} has been live in {self.required} for {human_duration(elapsed)}"
        if elapsed >= self.soak:
            return GateResult(SOAK, True, f"{so_far} (soak {human_duration(self.soak)})", live.function, evidence)
        remaining = human_duration(math.ceil(self.soak - elapsed))
        return GateResult(SOAK, False, f"{so_far}, soak is {human_duration(self.soak)}: {remaining} to go",
                          live.function, evidence)


def _untrusted(gate: str, required: str, context: GateContext) -> GateResult:
    """Fail closed: the required environment's ledger has records that are not what relay signed and chained."""
    problems = list(context.required_problems)
    shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
    repair = f" ({context.required_repair})" if context.required_repair else ""
    return GateResult(gate, False, f"the ledger of {required} cannot be trusted: {shown}{repair}",
                      evidence={"env": required, "ledger_problems": len(problems), "first_problem": problems[0]})


class AlarmsGate:
    """The environment's alarms, read from its account: each must exist and not be in ALARM.

    Checked before anything moves (`check`), and watched between canary
    steps (`firing`). No alarms configured, or no CloudWatch, means nothing to check.
    """

    name = ALARMS

    def __init__(self, cloudwatch: CloudWatch | None, names: Sequence[str]) -> None:
        self.cloudwatch = cloudwatch
        self.names = tuple(names)

    def states(self) -> dict[str, AlarmState | None]:
        if not self.names or self.cloudwatch is None:
            return {}
        return self.cloudwatch.alarm_states(self.names)

    def check(self, context: GateContext | None = None) -> Sequence[GateResult]:
        """One result per alarm; a missing alarm refuses (it could never fire). The context is not needed."""
        return tuple(_alarm_result(name, state) for name, state in self.states().items())

    def firing(self) -> AlarmState | None:
        return next((s for s in self.states().values() if s is not None and s.firing), None)


def _alarm_result(name: str, state: AlarmState | None) -> GateResult:
    if state is None:
        return GateResult(ALARMS, False, f"alarm {name} does not exist in the environment's account", name,
                          {"alarm": name, "state": None})
    evidence = {"alarm": name, "state": state.state, "reason": state.reason}
    if state.firing:
        return GateResult(ALARMS, False, f"alarm {name} is in ALARM" + (f": {state.reason}" if state.reason else ""),
                          name, evidence)
    return GateResult(ALARMS, True, f"alarm {name} is {state.state}", name, evidence)


def gates_for(env: Environment, *, alarms: AlarmsGate | None = None) -> tuple[Gate, ...]:
    """The gates `env`'s config asks for, in the order they are checked.

    `alarms` is the environment's `AlarmsGate` (it needs the account's
    CloudWatch, so the caller builds it; the canary watches the same one).
    """
    gates: list[Gate] = []
    if env.requires:
        gates.append(RequiresGate(env.requires))
        if env.soak > 0:
            gates.append(SoakGate(env.requires, env.soak))
    if alarms is not None and alarms.names:
        gates.append(alarms)
    return tuple(gates)


def evaluate(gates: Iterable[Gate], context: GateContext) -> tuple[GateResult, ...]:
    """Every gate's results, gate by gate; none without gates."""
    return tuple(result for gate in gates for result in gate.check(context))


def failed(results: Iterable[GateResult]) -> list[GateResult]:
    return [r for r in results if not r.ok]


def refusal_message(results: Iterable[GateResult]) -> str:
    """One line naming every refused gate, e.g. `gates refused: requires: staging has not run ...; soak: ...`."""
    failures = failed(results)
    if not failures:
        return "every gate passed"
    noun = "gate" if len(failures) == 1 else "gates"
    return f"{noun} refused: " + "; ".join(f"{r.name}: {r.detail}" for r in failures)


def _text(value: str | None) -> str:
    return value or ""


@attrs.frozen
class Override:
    """`--force --reason TEXT`, validated once: a forced run always says why (the ledger records it).

    Promote uses it to override refused gates; rollback to take the
    environment over from a run that holds it. Constructing one with
    `force` and no reason raises `UsageError`.
    """

    force: bool = False
    reason: str = attrs.field(default="", converter=_text)

    def __attrs_post_init__(self) -> None:
        if self.force and not self.reason.strip():
            raise UsageError(FORCE_NEEDS_REASON, hint=_FORCE_HINT)

    def overrides(self, results: Iterable[GateResult]) -> bool:
        """True when gates refused and this run goes ahead anyway (the run is recorded as forced)."""
        return self.force and bool(failed(results))

    def enforce(self, results: Sequence[GateResult]) -> None:
        """Raise GateRefused naming every refused gate, unless forced."""
        if failed(results) and not self.force:
            raise GateRefused(refusal_message(results))
