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
        self._lock = threading.Lock()

    def switch(self, versions: Mapping[str, str]) -> None:
        """Point every moving alias at `versions[function]`, as canary steps when the environment says so."""
        moving = list(self.plan.moving)
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
                if item.before is None:
                    self.lam.delete_alias(action.function_name, self.plan.alias)
                else:
                    self.lam.update_alias(action.function_name, self.plan.alias, version=item.before.function_version,
                                          description=item.before.description, weights=dict(item.before.weights))
                back.append(action.function)
            except Exception as exc:
                stuck.append(f"{action.function} (alias {self.plan.alias} could not be moved back: {exc})")
        return back, stuck

    def _point(self, action: MoveAlias, version: str, weights: dict[str, float]) -> None:
        description = action.alias_mark(self.plan.app).render()
        before = AliasConfig(name=self.plan.alias, arn="", function_version=action.alias_from or "",
                             description=action.alias_description, weights=action.alias_weights) if action.alias_exists else None
        with self._lock:
            first = all(m.action.function != action.function for m in self.moved)
            created = not action.alias_exists and first
        if created:
            self.lam.create_alias(action.function_name, self.plan.alias, version=version, description=description,
                                  weights=weights)
        else:
            self.lam.update_alias(action.function_name, self.plan.alias, version=version, description=description,
                                  weights=weights)
        with self._lock:
            if first:
                self.moved.append(Moved(action, before))

    def _each(self, actions: Sequence[MoveAlias], work: Callable[[MoveAlias], None]) -> None:
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
