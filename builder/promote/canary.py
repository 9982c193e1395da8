"""Moving aliases: all at once, or as canary steps while the environment's alarms are watched.

A canary step points the alias at the version it served before, with
`RoutingConfig.AdditionalVersionWeights` sending `step`% of the traffic to
the new version, then waits `interval` seconds, polling the alarms through
the same `AlarmsGate` that was checked before anything moved
(`builder.promote.gates`). An alarm in ALARM stops the run: the caller moves
every alias of the run back.

Once every alias serves its new version, the alias's provisioned concurrency
is set where the environment asks for a value it does not have yet
(`MoveAlias.provisioned`); undoing the run puts the previous value back, or
removes it when there was none.

Every move is conditional on the state the plan read: before it, the alias is
read again (`get_alias`) and must still be where the plan saw it (or where
this run last put it): same version, same weights, same `RevisionId` when
Lambda reports one; the update itself carries that `RevisionId` as Lambda's
precondition. Anything else means another run (or a hand) moved the alias
after this run planned: RaceLost (exit 10), and the caller moves back only
the aliases this run moved and that are still where it put them, so a late
run never undoes another's release. All aliases are checked once before the
first move, so a stale plan usually moves nothing at all.

Time goes through a `Clock` (`now()`, `sleep(s)`) so tests drive canary
intervals, soak times and waits without real waiting.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import attrs

from builder.aws.cloudwatch import AlarmState
from builder.aws.lambda_ import AliasConfig, LambdaApi
from builder.errors import RaceLost
from builder.progress import Reporter, SilentReporter
from builder.promote.gates import AlarmsGate
from builder.promote.instructions import MoveAlias, Plan

# How often alarms are polled during a canary step.
POLL_SECONDS = 10


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """Aware UTC time."""

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class AlarmFired(Exception):
    """An alarm went to ALARM during a canary step (internal: the executor turns it into CanaryAborted)."""

    def __init__(self, alarm: AlarmState, step: int) -> None:
        super().__init__(f"alarm {alarm.name} is in ALARM during the {step}% canary step"
                         + (f" ({alarm.reason})" if alarm.reason else ""))
        self.alarm = alarm
        self.step = step



def watch(clock: Clock, alarms: AlarmsGate, seconds: int, *, step: int, poll: int = POLL_SECONDS) -> None:
    """Wait `seconds`, checking the alarms every `poll` seconds and once at the end; raise AlarmFired."""
    waited = 0
    while True:
        fired = alarms.firing()
        if fired is not None:
            raise AlarmFired(fired, step)
        if waited >= seconds:
            return
        pause = min(poll, seconds - waited)
        clock.sleep(pause)
        waited += pause


@attrs.frozen
class Moved:
    """An alias this run changed, and how it was before (None: it did not exist)."""

    action: MoveAlias
    before: AliasConfig | None


class AliasMover:
    """Moves the aliases of one plan and remembers every move, so they can be undone."""

    def __init__(self, lam: LambdaApi, plan: Plan, *, clock: Clock, alarms: AlarmsGate,
                 reporter: Reporter | None = None, workers: int = 16) -> None:
        self.lam = lam
        self.plan = plan
        self.clock = clock
        self.alarms = alarms
        self.reporter = reporter or SilentReporter()
        self.workers = workers
        self.moved: list[Moved] = []
        self.provisioned: list[MoveAlias] = []  # aliases whose provisioned concurrency this run set
        # function -> the alias as this run last set it (absent: as the plan read it)
        self._expected: dict[str, AliasConfig | None] = {}
        self._lock = threading.Lock()

    def switch(self, versions: Mapping[str, str]) -> None:
        """Point every moving alias at `versions[function]`, as canary steps when the environment says so."""
        moving = list(self.plan.moving)
        self._each(moving, self.check)  # a stale plan moves nothing
        canary = self.plan.canary
        splittable = [a for a in moving
                      if a.alias_exists and a.alias_from is not None and a.alias_from != versions[a.function]]
        steps = [s for s in (canary.steps if canary else ()) if 0 < s < 100]
        if canary is None or not steps or not splittable:
            self._each(moving, lambda a: self._point(a, versions[a.function], {}))
            self._each([a for a in moving if a.sets_provisioned], self._provision)
            return
        direct = [a for a in moving if a not in splittable]
        # What cannot be split (a new alias, or one already on the new version) goes all the way at once.
        self._each(direct, lambda a: self._point(a, versions[a.function], {}))
        for step in steps:
            self.reporter.step(f"canary {step}%: {len(splittable)} alias(es) send {step}% to the new versions")
            self._each(splittable, functools.partial(self._split, versions=versions, step=step))
            watching = ", ".join(self.plan.alarms) or "no alarms"
            with self.reporter.waiting(f"canary {step}% in {self.plan.env}, watching {watching}",
                                       seconds=canary.interval):
                watch(self.clock, self.alarms, canary.interval, step=step)
        self.reporter.step("canary 100%: every alias points at its new version")
        self._each(splittable, lambda a: self._point(a, versions[a.function], {}))
        self._each([a for a in moving if a.sets_provisioned], self._provision)

    def _provision(self, action: MoveAlias) -> None:
        assert action.provisioned is not None
        self.reporter.step(f"{action.function}: provisioned concurrency {action.provisioned_from or 0} -> "
                           f"{action.provisioned} on alias {self.plan.alias}")
        self.lam.put_provisioned_concurrency(action.function_name, self.plan.alias, action.provisioned)
        with self._lock:
            self.provisioned.append(action)

    def _split(self, action: MoveAlias, *, versions: Mapping[str, str], step: int) -> None:
        """Keep the alias on the version it served, sending `step`% to the new one."""
        self._point(action, action.alias_from or "", {versions[action.function]: step / 100})

    def revert(self) -> tuple[list[str], list[str]]:
        """Put back every alias this run moved: (functions moved back, failures to move back)."""
        with self._lock:
            moved = list(reversed(self.moved))
            provisioned = list(reversed(self.provisioned))
        back: list[str] = []
        stuck: list[str] = []
        for action in provisioned:
            try:
                if action.provisioned_from is None:
                    self.lam.delete_provisioned_concurrency(action.function_name, self.plan.alias)
                else:
                    self.lam.put_provisioned_concurrency(action.function_name, self.plan.alias, action.provisioned_from)
            except Exception as exc:
                stuck.append(f"{action.function} (provisioned concurrency of alias {self.plan.alias} could not be "
                             f"put back to {action.provisioned_from or 'none'}: {exc})")
        for item in moved:
            action = item.action
            try:
                expected = self.expected(action)
                found = self.lam.get_alias(action.function_name, self.plan.alias)
                if not _same(found, expected):
                    # Moved by someone else after this run: theirs now; putting ours back would undo their move.
                    stuck.append(f"{action.function} (alias {self.plan.alias} left as it is: {_shown(found)} since this "
                                 f"run set {_shown(expected)}; someone else moved it)")
                    continue
                if item.before is None:
                    self.lam.delete_alias(action.function_name, self.plan.alias)
                else:
                    self.lam.update_alias(action.function_name, self.plan.alias, version=item.before.function_version,
                                          description=item.before.description, weights=dict(item.before.weights),
                                          revision_id=expected.revision_id if expected else None)
                back.append(action.function)
            except Exception as exc:
                stuck.append(f"{action.function} (alias {self.plan.alias} could not be moved back: {exc})")
        return back, stuck

    def expected(self, action: MoveAlias) -> AliasConfig | None:
        """The alias as this run last set it, or as the plan read it (None: it does not exist)."""
        with self._lock:
            if action.function in self._expected:
                return self._expected[action.function]
        if not action.alias_exists:
            return None
        return AliasConfig(name=self.plan.alias, arn="", function_version=action.alias_from or "",
                           description=action.alias_description, weights=action.alias_weights,
                           revision_id=action.alias_revision)

    def check(self, action: MoveAlias) -> AliasConfig | None:
        """The alias as expected (see `expected`), read again; RaceLost when someone else moved it meanwhile."""
        expected = self.expected(action)
        found = self.lam.get_alias(action.function_name, self.plan.alias)
        if not _same(found, expected):
            raise RaceLost(
                f"{self.plan.env}: alias {self.plan.alias} of {action.function_name} is {_shown(found)}, not "
                f"{_shown(expected)} as this run {'set' if action.function in self._expected else 'planned from'}: "
                f"another run (or a hand) moved it meanwhile; this {self.plan.event} stops without moving it",
                hint=f"Check `relay status --env {self.plan.env}` and `relay history --env {self.plan.env}`, then rerun "
                     "the command if it is still wanted: it plans again from what is there now.")
        return expected

    def _point(self, action: MoveAlias, version: str, weights: dict[str, float]) -> None:
        description = action.alias_mark(self.plan.app).render()
        before = AliasConfig(name=self.plan.alias, arn="", function_version=action.alias_from or "",
                             description=action.alias_description, weights=action.alias_weights) if action.alias_exists else None
        expected = self.check(action)
        with self._lock:
            first = all(m.action.function != action.function for m in self.moved)
        if expected is None:
            now = self.lam.create_alias(action.function_name, self.plan.alias, version=version, description=description,
                                        weights=weights)
        else:
            now = self.lam.update_alias(action.function_name, self.plan.alias, version=version, description=description,
                                        weights=weights, revision_id=expected.revision_id)
        with self._lock:
            self._expected[action.function] = now
            if first:
                self.moved.append(Moved(action, before))

    def _each(self, actions: Sequence[MoveAlias], work: Callable[[MoveAlias], object]) -> None:
        """Run `work` for every action in parallel; every call finishes before the first failure is raised."""
        if not actions:
            return
        errors: list[BaseException] = []
        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(actions))), thread_name_prefix="relay-alias") as pool:
            for future in [pool.submit(work, a) for a in actions]:
                exc = future.exception()
                if exc is not None:
                    errors.append(exc)
        if errors:
            raise errors[0]


def _same(found: AliasConfig | None, expected: AliasConfig | None) -> bool:
    """The alias is where `expected` says: version and weights, and the RevisionId when both sides have one."""
    if found is None or expected is None:
        return found is None and expected is None
    if found.function_version != expected.function_version or dict(found.weights) != dict(expected.weights):
        return False
    return not (found.revision_id and expected.revision_id and found.revision_id != expected.revision_id)


def _shown(alias: AliasConfig | None) -> str:
    if alias is None:
        return "absent"
    weights = ", ".join(f"{w:.0%} on {v}" for v, w in alias.weights)
    return f"on version {alias.function_version}" + (f" ({weights})" if weights else "")
