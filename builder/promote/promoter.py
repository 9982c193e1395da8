"""`relay promote`: verify the release, check the gates, read the environment, plan, apply, record.

One environment, one release. Nothing is touched before the release document
and every bundle it pins are verified against the trusted keys and the gates
pass (or are overridden with a reason); a dry run stops after the plan. The
ledger record is opened before the executor touches the environment and closed
with the outcome.

Triggers that invoke a function unqualified or at `$LATEST` (event source
mappings, its function URL, resource-policy permissions) bypass the alias:
gates and canary steps do not govern the traffic they send, and `$LATEST` gets
the new code while preparing. A dry run lists them; a canary does not start
while one exists unless the request allows it (`--allow-unqualified`).
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import attrs

from builder.aws.lambda_ import LambdaApi
from builder.config import Environment, Project
from builder.errors import AwsError, ConfigError, GateRefused, NotFound, VerificationFailed
from builder.frozen import to_tuple
from builder.lambda_records import Trigger
from builder.progress import Reporter, SilentReporter
from builder.promote.canary import Clock
from builder.promote.executor import ApplyFailed, Executor
from builder.promote.gates import GateContext, Override, evaluate, failed, gates_for
from builder.promote.instructions import Plan
from builder.promote.ledger import DEFAULT_LEASE, Ledger
from builder.promote.ledger_replay import succeeded
from builder.promote.outcome import close_after_failure, close_after_success
from builder.promote.plan import layer_name_in_aws, plan_promotion, selected_functions
from builder.promote.records import FAILED, SUCCEEDED, GateResult, LedgerRecord
from builder.promote.state import read_state
from builder.registry.catalog import Catalog
from builder.registry.release import Release, ReleaseFunction
from builder.registry.signing import Signer, TrustedKeys
from builder.registry.store import Store
from builder.registry.verify import verify_release
from builder.registry.versions import parse_version


@attrs.frozen
class PromoteRequest:
    version: str
    only: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    dry_run: bool = False
    force: bool = False
    reason: str | None = None
    allow_unqualified: bool = False  # start a canary although triggers bypass the alias
    # Called with the plan after the gates passed and before anything is changed (the ledger record not opened
    # yet): the command layer shows the plan there, and may raise (a declined confirmation) to change nothing.
    on_plan: Callable[[Plan], None] | None = attrs.field(default=None, eq=False, repr=False)


ALLOW_UNQUALIFIED_FLAG = "--allow-unqualified"


@attrs.frozen
class PromoteResult:
    status: str  # "planned" (dry run) | "unchanged" | "succeeded"
    plan: Plan
    gates: tuple[GateResult, ...] = attrs.field(default=(), converter=to_tuple)
    forced: bool = False
    versions: Mapping[str, str] = attrs.field(factory=dict)
    record: LedgerRecord | None = None
    verified_checks: int = 0
    requests: Mapping[str, int] = attrs.field(factory=dict)
    # function -> triggers that invoke it unqualified or at $LATEST (read for a dry run and before a canary)
    triggers: Mapping[str, tuple[Trigger, ...]] = attrs.field(factory=dict)

    @property
    def would_refuse(self) -> bool:
        return bool(failed(self.gates)) and not self.forced

    def to_json(self) -> dict:
        return {
            "status": self.status,
            "plan": self.plan.to_json(),
            "gates": [g.to_json() for g in self.gates],
            "would_refuse": self.would_refuse if self.status == "planned" else False,
            "forced": self.forced,
            "versions": dict(self.versions),
            "ledger_seq": self.record.seq if self.record else None,
            "verified_checks": self.verified_checks,
            "unqualified_triggers": {fn: [t.to_json() for t in found] for fn, found in sorted(self.triggers.items())},
            "aws_requests": {"total": sum(self.requests.values()), "by_operation": dict(self.requests)},
        }


class Promoter:
    """`relay promote`: one environment, one release; nothing verified, nothing touched."""

    def __init__(
        self,
        project: Project,
        env: Environment,
        *,
        actor: str,
        lam: LambdaApi,
        executor: Executor,
        store: Store,
        trusted: TrustedKeys,
        clock: Clock | None = None,
        reporter: Reporter | None = None,
        ledger_signer: Signer | None = None,
        required_lambda: Callable[[], LambdaApi] | None = None,
    ) -> None:
        self.project = project
        self.env = env
        self.actor = actor
        self.lam = lam
        self.executor = executor
        self.store = store
        self.trusted = trusted
        self.clock = clock or executor.clock
        self.reporter = reporter or SilentReporter()
        # The Lambda seam of `env.requires`'s account (its own session), to check the gate against its aliases.
        self.required_lambda = required_lambda
        # Ledger records are signed with `ledger_signer` and read back against the release keys.
        self.ledger = Ledger(store, project.name, env.name, clock=self.clock.now, signer=ledger_signer, trusted=trusted)

    def promote(self, request: PromoteRequest) -> PromoteResult:
        override = Override(request.force, request.reason)  # --force needs --reason, before anything is read
        release, checks_passed = self._verified_release(request)
        selected = selected_functions(release, request.only)
        gates = self._gates(release, selected)
        forced = override.overrides(gates)
        if not request.dry_run:
            self._enforce(gates, override, request)
        seqs = self.ledger.seqs()  # the ledger's head as this run reads the environment: its lock is taken only there
        plan = self._plan(release, request.only)
        if request.dry_run:
            return PromoteResult("planned", plan, gates, forced, verified_checks=checks_passed,
                                 triggers=self._triggers(plan, [f.function for f in plan.functions]))
        if plan.is_noop:
            self.reporter.note(f"{release.app}@{release.version} is already live in {self.env.name}: nothing to do")
            live = {f.function: f.target_version for f in plan.functions if f.target_version}
            return PromoteResult("unchanged", plan, gates, forced, versions=live, verified_checks=checks_passed)
        triggers = self._canary_check(plan, request) if _runs_canary(plan) else {}
        if request.on_plan is not None:
            request.on_plan(plan)
        return attrs.evolve(self._apply(plan, gates, override if forced else None, checks_passed,
                                        expect_head=seqs[-1] if seqs else 0), triggers=triggers)

    # -- steps ---------------------------------------------------------------------------------------

    def _verified_release(self, request: PromoteRequest) -> tuple[Release, int]:
        app, version = self.project.name, request.version
        parse_version(version)
        catalog = Catalog(self.store, app)
        self.reporter.step(f"verifying {app}@{version} against the trusted keys")
        function = request.only[0] if len(request.only) == 1 else None
        try:
            before = catalog.read(version)
            if before is None:
                raise NotFound(f"{app}@{version} is not published in {self.store.where}",
                               hint="`relay versions` lists what exists.")
            report = verify_release(self.store, app, version, self.trusted, function=function, reporter=self.reporter)
            # What is promoted is the document verify read: it must not have changed in between.
            after = catalog.read(version)
            if after is None or after.raw != before.raw:
                raise VerificationFailed(f"{app}@{version}: the release document changed while it was being verified")
        except VerificationFailed as exc:
            if not request.dry_run:
                self.ledger.refuse(event="promote", actor=self.actor, from_version=self._live_version(),
                                   to_version=version, reason=f"verification failed: {exc.message}")
            raise
        return after.release, len(report.checks)

    def _gates(self, release: Release, selected: Sequence[ReleaseFunction]) -> tuple[GateResult, ...]:
        records, problems, repair = None, [], ""
        if self.env.requires:
            required = Ledger(self.store, self.project.name, self.env.requires, trusted=self.trusted)
            try:
                scan = required.scan()  # signatures and chain checked: any problem fails the gates closed
                records, problems, repair = scan.accepted, scan.problems, required.repair_hint
            except (AwsError, NotFound, VerificationFailed) as exc:
                self.reporter.note(f"the ledger of {self.env.requires} could not be read: {exc.message}")
        served, served_problem = self._required_served(selected) if self.env.requires else (None, None)
        context = GateContext({f.name: f.sha256 for f in selected}, release.version, self.clock.now(), records,
                              required_problems=problems, required_repair=repair,
                              required_served=served, required_served_problem=served_problem)
        return evaluate(gates_for(self.env, alarms=self.executor.alarms), context)

    def _required_served(self, selected: Sequence[ReleaseFunction]
                         ) -> tuple[dict[str, tuple[tuple[str, str], ...]] | None, str | None]:
        """What the required environment's aliases serve, per function (see `GateContext.required_served`)."""
        if self.required_lambda is None or not self.env.requires:
            return None, None
        try:
            required = self.project.environment(self.env.requires)
            lam = self.required_lambda()
            self.reporter.step(f"reading what {required.name} serves (account {required.account})")
            served = {}
            for entry in selected:
                fn = self.project.functions.get(entry.name)
                if fn is not None:
                    served[entry.name] = _served(lam, fn.function_name, required.alias)
        except (AwsError, NotFound, VerificationFailed, ConfigError) as exc:
            return None, exc.message
        return served, None

    def _enforce(self, gates: tuple[GateResult, ...], override: Override, request: PromoteRequest) -> None:
        try:
            override.enforce(gates)
        except GateRefused as exc:
            self.ledger.refuse(event="promote", actor=self.actor, from_version=self._live_version(),
                               to_version=request.version, reason=exc.message, gates=gates)
            raise

    def _triggers(self, plan: Plan, functions: Sequence[str]) -> dict[str, tuple[Trigger, ...]]:
        """Per function of the plan that exists: the triggers that invoke it unqualified or at `$LATEST`."""
        names = {f.function: f.function_name for f in plan.functions
                 if f.function in functions and f.action != "create"}
        if not names:
            return {}
        self.reporter.step(f"reading what invokes {len(names)} function(s) without the alias {plan.alias}")
        with ThreadPoolExecutor(max_workers=min(8, len(names)), thread_name_prefix="relay-triggers") as pool:
            found = dict(zip(names, pool.map(self.lam.unqualified_triggers, names.values()), strict=True))
        return {fn: tuple(triggers) for fn, triggers in found.items() if triggers}

    def _canary_check(self, plan: Plan, request: PromoteRequest) -> dict[str, tuple[Trigger, ...]]:
        """Refuse to start a canary while triggers bypass the alias, unless the request allows it."""
        triggers = self._triggers(plan, [a.function for a in plan.moving])
        if not triggers:
            return {}
        listed = "; ".join(f"{fn}: " + ", ".join(f"{t.kind} {t.source}" for t in found)
                           for fn, found in sorted(triggers.items()))
        if request.allow_unqualified:
            self.reporter.note(f"the canary does not govern traffic that bypasses the alias ({listed})")
            return triggers
        message = (f"a canary in {plan.env} would not govern traffic that invokes the function unqualified or at "
                   f"$LATEST ({listed}): that traffic gets the new code as soon as it is uploaded")
        self.ledger.refuse(event="promote", actor=self.actor, from_version=self._live_version(),
                           to_version=request.version, reason=message)
        raise GateRefused(message, hint=f"Point these triggers at the alias {plan.alias} (its ARN ends in "
                                        f":{plan.alias}), or rerun with {ALLOW_UNQUALIFIED_FLAG} to start the canary anyway.")

    def _live_version(self) -> str | None:
        """The release this environment runs, per its ledger (what a refusal kept in place)."""
        done = succeeded(self.ledger.scan().accepted)
        return done[-1].to_version if done else None

    def _plan(self, release: Release, only: Sequence[str]) -> Plan:
        selected = selected_functions(release, only)
        functions = {f.name: self.project.functions[f.name].function_name for f in selected if f.name in self.project.functions}
        bundles = {b for f in selected for b in f.layers}
        found = [release.layer(b) for b in bundles]
        layers = sorted({layer_name_in_aws(release.app, layer.name) for layer in found if layer is not None})
        self.reporter.step(f"reading {self.env.name} (account {self.env.account}): {len(functions)} function(s), "
                           f"{len(layers)} layer(s)")
        provisioned = [name for name in functions if self.env.provisioned_concurrency_for(name) is not None]
        configured = [name for name in functions if self.env.manage_for(name) != "code"]
        state = read_state(self.lam, env=self.env.name, region=self.env.region, alias=self.env.alias,
                           functions=functions, layers=layers, provisioned=provisioned, function_level=configured)
        return plan_promotion(self.project, self.env, release, state, only=only)

    def _apply(self, plan: Plan, gates: tuple[GateResult, ...], override: Override | None,
               checks_passed: int, *, expect_head: int | None = None) -> PromoteResult:
        """Open the ledger record (with the overridden gates and the reason when forced), apply, close it."""
        forced = override is not None
        opened = self.ledger.open(event="promote", actor=self.actor, from_version=plan.from_version,
                                  to_version=plan.to_version, changes=plan.changes(),
                                  reason=override.reason if override else "", forced=forced, lease=lease_for(self.env),
                                  gates=gates if forced else (), expect_head=expect_head)
        self.reporter.step(f"ledger seq {opened.seq}: promoting {plan.app}@{plan.to_version} to {plan.env}")
        try:
            applied = self.executor.apply(plan)
        except ApplyFailed as exc:
            close_after_failure(self.ledger, opened, exc, status=exc.status, changes=plan.changes(exc.versions))
            raise
        except BaseException as exc:
            close_after_failure(self.ledger, opened, exc, status=FAILED)
            raise
        record = close_after_success(self.ledger, opened, plan, applied.versions)
        return PromoteResult(SUCCEEDED, plan, gates, forced, versions=dict(applied.versions), record=record,
                             verified_checks=checks_passed)


def _served(lam: LambdaApi, function_name: str, alias: str) -> tuple[tuple[str, str], ...]:
    """(Lambda version, sha256 hex of its code) for every version `alias` routes to, its main version first."""
    found = lam.get_alias(function_name, alias)
    if found is None:
        return ()
    _, versions = lam.function_versions(function_name)
    codes = {v.version: v.code_sha256 for v in versions}
    served = []
    for number in (found.function_version, *(v for v, _ in found.weights)):
        code = codes.get(number)
        served.append((number, base64.b64decode(code).hex() if code else f"(version {number} not found)"))
    return tuple(served)


def _runs_canary(plan: Plan) -> bool:
    """The plan's alias moves go in canary steps (an alias that exists moves, and a step is partial)."""
    steps = [s for s in (plan.canary.steps if plan.canary else ()) if 0 < s < 100]
    return bool(steps) and any(a.alias_exists and a.alias_from != a.to_version for a in plan.moving)


def lease_for(env: Environment) -> dt.timedelta:
    """How long a run may hold the environment: the default, plus the canary's own waiting."""
    canary = env.canary.interval * len(env.canary.steps) if env.canary else 0
    return DEFAULT_LEASE + dt.timedelta(seconds=canary)
