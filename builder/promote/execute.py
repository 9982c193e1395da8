"""The executor: applies a Plan in one account; and `promote`, which verifies, gates, plans and applies.

Applying is two phases:

1. PREPARE, a thread per function (after publishing the layers the plan
   needs): create or update the function (configuration, then code from the
   verified registry blob), wait until Lambda says the update succeeded,
   check the `CodeSha256` it reports, and publish a version with that
   `CodeSha256` (and `RevisionId`) as precondition and the artifact's version
   and digest in its description. No alias moves in this phase, so a failure
   here leaves the environment serving what it served; the versions already
   published are reused by the next run.
2. SWITCH: move the aliases (at once or as canary steps, see canary.py). A
   failure or an alarm moves every alias this run moved back to where it was.

Nothing here prints; `--dry-run` never reaches the executor.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import attrs

from builder.aws.errors import PreconditionFailed
from builder.aws.lambda_ import CodeSource, FunctionConfig, FunctionSettings, LambdaApi, S3Code, ZipCode
from builder.aws.s3 import S3Bucket
from builder.config import Environment, Project
from builder.errors import AwsError, GateRefused, LimitExceeded, NotFound, RelayError, UsageError, VerificationFailed
from builder.frozen import to_tuple
from builder.progress import Reporter, SilentReporter
from builder.promote.canary import AlarmFired, AlarmWatch, AliasMover, Clock, SystemClock
from builder.promote.gates import GateCheck, check_gates, enforce, failed, refusal_message
from builder.promote.ledger import DEFAULT_LEASE, Ledger, succeeded
from builder.promote.plan import CREATE, FunctionAction, LayerAction, Plan, layer_name_in_aws, plan_promotion, selected_functions
from builder.promote.records import FAILED, REVERTED, SUCCEEDED, FunctionChange, LedgerRecord
from builder.promote.state import DESCRIPTION_MAX, LayerMark, code_sha256_of, read_state
from builder.registry.catalog import Catalog
from builder.registry.release import Release
from builder.registry.signing import TrustedKeys
from builder.registry.store import Store
from builder.registry.verify import verify_release
from builder.registry.versions import parse_version
from builder.textfmt import human_size, table

# Lambda takes a zip inline up to 50 MB; larger code goes through the environment's deploy bucket.
INLINE_LIMIT = 50 * 1000 * 1000
WAIT_TIMEOUT = 15 * 60
WAIT_POLL = 1.0
_WORKERS = 16


# -- errors ------------------------------------------------------------------------------------------


class ApplyFailed(RelayError):
    """Applying a plan failed; the aliases this run moved were put back (as far as possible)."""

    hint = "Fix the cause and rerun the same command: versions already published are reused."

    def __init__(self, message: str, *, cause: BaseException, status: str = FAILED,
                 versions: Mapping[str, str] | None = None, reverted: Sequence[str] = (),
                 stuck: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.cause = cause
        self.status = status
        self.versions = dict(versions or {})
        self.reverted = tuple(reverted)
        self.stuck = tuple(stuck)
        self.exit_code = cause.exit_code if isinstance(cause, RelayError) else 1
        if isinstance(cause, RelayError) and cause.hint and type(cause).hint != RelayError.hint:
            self.hint = f"{cause.hint} Then rerun the same command: versions already published are reused."
        if stuck:
            self.hint = ("Some aliases could not be moved back (listed above): check them with `relay status`, "
                         "then rerun or `relay rollback`.")


class CanaryAborted(ApplyFailed):
    """An alarm fired during a canary step; the aliases were moved back."""

    hint = "Find out why the alarm fired before promoting again; `relay history` shows the record."

    def __init__(self, message: str, **kwargs) -> None:
        super().__init__(message, status=REVERTED, **kwargs)
        self.exit_code = GateRefused.exit_code


# -- the executor ------------------------------------------------------------------------------------


class BlobSource:
    """Verified bundle bytes from the registry: the sha256 is checked again after every download."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def fetch(self, sha256: str) -> bytes:
        key = self.store.layout.blob(sha256)
        data = self.store.read(key).body
        found = hashlib.sha256(data).hexdigest()
        if found != sha256:
            raise VerificationFailed(f"{key}: downloaded bytes hash to {found[:16]}, expected {sha256[:16]}",
                                     hint="The registry blob changed after verification: do not deploy it; check the registry.")
        return data


@attrs.frozen
class Applied:
    versions: Mapping[str, str]  # function -> Lambda version its alias now points at
    layers: Mapping[str, str]  # layer bundle -> layer version ARN
    published: tuple[str, ...] = ()  # functions whose version this run published
    layers_published: tuple[str, ...] = ()


class Executor:
    """Applies plans in one account, through that account's Lambda seam."""

    def __init__(
        self,
        lam: LambdaApi,
        *,
        blobs: BlobSource | None,
        alarms: AlarmWatch,
        clock: Clock | None = None,
        reporter: Reporter | None = None,
        deploy_bucket: S3Bucket | None = None,
        inline_limit: int = INLINE_LIMIT,
        workers: int = _WORKERS,
    ) -> None:
        self.lam = lam
        self.blobs = blobs
        self.alarms = alarms
        self.clock = clock or SystemClock()
        self.reporter = reporter or SilentReporter()
        self.deploy_bucket = deploy_bucket
        self.inline_limit = inline_limit
        self.workers = workers

    def apply(self, plan: Plan) -> Applied:
        layers, layers_published = self._layers(plan)
        versions, published = self._prepare(plan, layers)
        mover = AliasMover(self.lam, plan, clock=self.clock, alarms=self.alarms, reporter=self.reporter,
                           workers=self.workers)
        try:
            mover.switch(versions)
        except AlarmFired as fired:
            back, stuck = mover.revert()
            raise CanaryAborted(f"{fired}: aliases moved back ({_names(back)})" + _stuck_text(stuck),
                                cause=fired, versions=versions, reverted=back, stuck=stuck) from fired
        except BaseException as exc:
            back, stuck = mover.revert()
            raise ApplyFailed(
                f"{plan.event} of {plan.app} in {plan.env} failed while moving aliases: {_error_text(exc)}; "
                f"aliases moved back: {_names(back)}" + _stuck_text(stuck),
                cause=exc, versions=versions, reverted=back, stuck=stuck,
            ) from exc
        return Applied(versions, layers, published, layers_published)

    # -- layers ----------------------------------------------------------------------------------

    def _layers(self, plan: Plan) -> tuple[dict[str, str], tuple[str, ...]]:
        arns = {l.bundle: l.reuse_arn for l in plan.layers if not l.publishes}
        todo = [l for l in plan.layers if l.publishes]
        # Versions of one layer go one after the other (their numbers are handed out in order); layers in parallel.
        by_name: dict[str, list[LayerAction]] = {}
        for layer in todo:
            by_name.setdefault(layer.layer_name, []).append(layer)
        groups, errors = _parallel(lambda group: [(l, self._publish_layer(plan, l)) for l in group],
                                   list(by_name.values()), self.workers, "relay-layer")
        results = [pair for _, pairs in groups for pair in pairs]
        errors = [(group[0], exc) for group, exc in errors]
        if errors:
            raise ApplyFailed(f"{plan.event} of {plan.app} in {plan.env} failed publishing layers: "
                              + "; ".join(f"{l.bundle}: {_error_text(e)}" for l, e in errors)
                              + "; no function or alias was changed",
                              cause=errors[0][1])
        arns.update({layer.bundle: arn for layer, arn in results})
        return arns, tuple(l.bundle for l in todo)

    def _publish_layer(self, plan: Plan, layer: LayerAction) -> str:
        self.reporter.step(f"publishing layer {layer.layer_name} ({layer.architecture}) in account {self.lam.account}")
        code = self._code(layer.sha256, layer.layer_name)
        mark = LayerMark(plan.app, layer.name, layer.architecture, layer.sha256)
        info = self.lam.publish_layer_version(layer.layer_name, code, description=mark.render(),
                                              runtimes=[layer.runtime], architectures=[layer.architecture])
        if info.code_sha256 and info.code_sha256 != code_sha256_of(layer.sha256):
            raise VerificationFailed(f"layer {info.arn}: Lambda reports CodeSha256 {info.code_sha256}, "
                                     f"expected {code_sha256_of(layer.sha256)}")
        return info.arn

    # -- functions -------------------------------------------------------------------------------

    def _prepare(self, plan: Plan, layers: Mapping[str, str]) -> tuple[dict[str, str], tuple[str, ...]]:
        versions = {f.function: f.target_version for f in plan.functions if f.target_version and not f.publishes}
        todo = [f for f in plan.functions if f.publishes]
        results, errors = _parallel(lambda f: self._prepare_one(plan, f, layers), todo, self.workers, "relay-fn")
        versions.update({f.function: version for f, version in results})
        if errors:
            done = sorted(f.function for f, _ in results)
            raise ApplyFailed(
                f"{plan.event} of {plan.app} {plan.to_version} in {plan.env} failed preparing "
                + "; ".join(f"{f.function}: {_error_text(e)}" for f, e in errors)
                + f". No alias was moved; prepared and kept for a re-run: {_names(done)}",
                cause=errors[0][1], versions={f.function: v for f, v in results},
            )
        return versions, tuple(f.function for f, _ in results)

    def _prepare_one(self, plan: Plan, action: FunctionAction, layers: Mapping[str, str]) -> str:
        desired = action.desired
        assert desired is not None and action.sha256 and action.code_sha256
        name = action.function_name
        settings = FunctionSettings(handler=desired.handler, runtime=desired.runtime, memory=desired.memory,
                                    timeout=desired.timeout, environment=dict(desired.environment),
                                    layers=tuple(layers[b] for b in desired.layers), description=desired.description)
        if action.action == CREATE:
            self.reporter.step(f"{action.function}: creating {name}")
            config = self.lam.create_function(name, self._code(action.sha256, name), settings, role=desired.role or "",
                                              architecture=desired.architecture)
            config = self._settle(name, config)
        else:
            # Each update is conditional on the revision the plan (or the previous update) saw: a change
            # made by someone else in between makes Lambda refuse it (RaceLost) instead of overwriting it.
            config = None
            if action.config_changes:
                self.reporter.step(f"{action.function}: setting {', '.join(action.config_changes)}")
                config = self._settle(name, self.lam.update_configuration(name, settings, revision_id=action.revision_id))
            if action.update_code:
                self.reporter.step(f"{action.function}: uploading code {action.sha256[:12]}")
                config = self._settle(name, self.lam.update_code(
                    name, self._code(action.sha256, name), architecture=desired.architecture,
                    revision_id=config.revision_id if config else action.revision_id))
            if config is None:
                config = self.lam.get_function(name)
                if config is None:
                    raise NotFound(f"{self.lam.where(name)} disappeared while being promoted")
        if config.code_sha256 != action.code_sha256:
            raise VerificationFailed(f"{self.lam.where(name)}: Lambda reports CodeSha256 {config.code_sha256} "
                                     f"after the update, expected {action.code_sha256}")
        return self._publish(plan, action, settings, config)

    def _publish(self, plan: Plan, action: FunctionAction, settings: FunctionSettings, config: FunctionConfig) -> str:
        name = action.function_name
        mark = action.mark(plan.app).render()
        version = self.lam.publish_version(name, code_sha256=action.code_sha256 or "", description=mark,
                                           revision_id=config.revision_id)
        if version.description != mark and version.code_sha256 == action.code_sha256:
            # Lambda returned an existing version (nothing changed since it was published, by hand):
            # change the description of $LATEST so that a new version, with relay's mark, is published.
            self.reporter.note(f"{action.function}: version {version.version} already holds this code without relay's "
                               "description; publishing a marked one")
            marked = attrs.evolve(settings, description=f"{settings.description} [{mark}]"[-DESCRIPTION_MAX:].strip())
            config = self._settle(name, self.lam.update_configuration(name, marked))
            version = self.lam.publish_version(name, code_sha256=action.code_sha256 or "", description=mark,
                                               revision_id=config.revision_id)
        if version.code_sha256 != action.code_sha256:
            raise VerificationFailed(f"{self.lam.where(name)}: published version {version.version} has CodeSha256 "
                                     f"{version.code_sha256}, expected {action.code_sha256}")
        if version.description != mark:
            raise AwsError(f"{self.lam.where(name)}: published version {version.version} is described "
                           f"{version.description!r}, expected {mark!r}")
        self.reporter.step(f"{action.function}: published version {version.version}")
        return version.version

    def _settle(self, name: str, config: FunctionConfig) -> FunctionConfig:
        """Wait until Lambda has finished applying an update (State and LastUpdateStatus)."""
        deadline = self.clock.now() + dt.timedelta(seconds=WAIT_TIMEOUT)
        while config.state == "Pending" or config.last_update_status == "InProgress":
            if self.clock.now() >= deadline:
                raise AwsError(f"{self.lam.where(name)}: still updating after {WAIT_TIMEOUT}s")
            self.clock.sleep(WAIT_POLL)
            fresh = self.lam.get_function(name)
            if fresh is None:
                raise NotFound(f"{self.lam.where(name)} disappeared while being updated")
            config = fresh
        if config.state == "Failed" or config.last_update_status == "Failed":
            raise AwsError(f"{self.lam.where(name)}: the update failed: {config.last_update_reason or 'no reason given'}")
        return config

    def _code(self, sha256: str, what: str) -> CodeSource:
        if self.blobs is None:
            raise AwsError(f"{what}: code is needed but the registry is not available")
        data = self.blobs.fetch(sha256)
        if len(data) <= self.inline_limit:
            return ZipCode(data)
        if self.deploy_bucket is None:
            raise LimitExceeded(
                f"{what}: the bundle is {human_size(len(data))}, more than Lambda takes inline ({human_size(self.inline_limit)})",
                hint="Set deploy_bucket for the environment (a bucket in its account and region).",
            )
        key = f"relay/blobs/{sha256}.zip"
        try:
            self.deploy_bucket.put(key, data, if_none_match=True, content_type="application/zip",
                                   checksum_sha256=code_sha256_of(sha256))
        except PreconditionFailed:
            pass  # content-addressed: the same bytes are there already (Lambda's CodeSha256 is checked anyway)
        return S3Code(self.deploy_bucket.name, key)


def _parallel(work, items, workers, prefix):
    """(results as (item, value), errors as (item, exception)) of `work` over `items`, every item run."""
    results, errors = [], []
    if not items:
        return results, errors
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items))), thread_name_prefix=prefix) as pool:
        futures = [(item, pool.submit(work, item)) for item in items]
        for item, future in futures:
            exc = future.exception()
            if exc is None:
                results.append((item, future.result()))
            else:
                errors.append((item, exc))
    return results, errors


def _error_text(exc: BaseException) -> str:
    return exc.message if isinstance(exc, RelayError) else f"{type(exc).__name__}: {exc}"


def _names(items: Sequence[str]) -> str:
    return ", ".join(items) if items else "none"


def _stuck_text(stuck: Sequence[str]) -> str:
    return f"; NOT moved back: {'; '.join(stuck)}" if stuck else ""


# -- promote: verify, gate, read, plan, apply, record --------------------------------------------------


@attrs.frozen
class PromoteRequest:
    version: str
    only: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    dry_run: bool = False
    force: bool = False
    reason: str | None = None


@attrs.frozen
class PromoteResult:
    status: str  # "planned" (dry run) | "unchanged" | "succeeded"
    plan: Plan
    gates: tuple[GateCheck, ...] = attrs.field(default=(), converter=to_tuple)
    forced: bool = False
    versions: Mapping[str, str] = attrs.field(factory=dict)
    record: LedgerRecord | None = None
    verified_checks: int = 0
    requests: Mapping[str, int] = attrs.field(factory=dict)

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
            "aws_requests": {"total": sum(self.requests.values()), "by_operation": dict(self.requests)},
        }

    def summary(self) -> str:
        lines = [self.plan.summary()]
        if self.gates:
            rows = [["ok" if g.ok else ("FORCED" if self.forced else "FAIL"), g.name, g.detail] for g in self.gates]
            lines += ["", table(rows, ["", "gate", "detail"])]
        if self.status == "planned":
            verdict = f"\nDry run: nothing was changed. {refusal_message(self.gates)}" if self.would_refuse else \
                "\nDry run: nothing was changed."
            lines.append(verdict)
        elif self.status == "unchanged":
            lines.append(f"\n{self.plan.app}@{self.plan.to_version} already live in {self.plan.env}; nothing to do.")
        else:
            moved = ", ".join(f"{f}:{v}" for f, v in sorted(self.versions.items()))
            seq = f" (ledger seq {self.record.seq})" if self.record else ""
            lines.append(f"\nPromoted {self.plan.app}@{self.plan.to_version} to {self.plan.env}{seq}: {moved}"
                         + (" [FORCED]" if self.forced else ""))
        return "\n".join(lines)


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
        self.ledger = Ledger(store, project.name, env.name, clock=self.clock.now)

    def promote(self, request: PromoteRequest) -> PromoteResult:
        if request.force and not (request.reason or "").strip():
            raise UsageError("--force needs --reason TEXT",
                             hint="Say why the gates are overridden; the reason is recorded in the ledger.")
        release, checks_passed = self._verified_release(request)
        selected = selected_functions(release, request.only)
        gates = self._gates(release, selected)
        forced = bool(failed(gates)) and request.force
        if not request.dry_run:
            self._enforce(gates, request)
        plan = self._plan(release, request.only)
        if request.dry_run:
            return PromoteResult("planned", plan, gates, forced, verified_checks=checks_passed)
        if plan.is_noop:
            self.reporter.note(f"{release.app}@{release.version} is already live in {self.env.name}: nothing to do")
            return PromoteResult("unchanged", plan, gates, forced, versions={f.function: f.target_version for f in plan.functions},
                                 verified_checks=checks_passed)
        return self._apply(plan, gates, forced, request, checks_passed)

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

    def _gates(self, release: Release, selected) -> list[GateCheck]:
        checks: list[GateCheck] = []
        if self.env.requires:
            try:
                records = Ledger(self.store, self.project.name, self.env.requires).records()
            except (AwsError, NotFound, VerificationFailed) as exc:
                self.reporter.note(f"the ledger of {self.env.requires} could not be read: {exc.message}")
                records = None
            checks += check_gates(self.env, digests={f.name: f.sha256 for f in selected}, artifact=release.version,
                                  required_records=records, now=self.clock.now())
        checks += self.executor.alarms.gate_checks()
        return checks

    def _enforce(self, gates: list[GateCheck], request: PromoteRequest) -> None:
        try:
            enforce(gates, force=request.force, reason=request.reason)
        except GateRefused as exc:
            self.ledger.refuse(event="promote", actor=self.actor, from_version=self._live_version(),
                               to_version=request.version, reason=exc.message)
            raise

    def _live_version(self) -> str | None:
        """The release this environment runs, per its ledger (what a refusal kept in place)."""
        done = succeeded(self.ledger.records())
        return done[-1].to_version if done else None

    def _plan(self, release: Release, only: Sequence[str]) -> Plan:
        selected = selected_functions(release, only)
        functions = {f.name: self.project.functions[f.name].function_name for f in selected if f.name in self.project.functions}
        bundles = {b for f in selected for b in f.layers}
        layers = sorted({layer_name_in_aws(release.app, release.layer(b).name) for b in bundles if release.layer(b)})
        self.reporter.step(f"reading {self.env.name} (account {self.env.account}): {len(functions)} function(s), "
                           f"{len(layers)} layer(s)")
        state = read_state(self.lam, env=self.env.name, region=self.env.region, alias=self.env.alias,
                           functions=functions, layers=layers)
        return plan_promotion(self.project, self.env, release, state, only=only)

    def _apply(self, plan: Plan, gates: list[GateCheck], forced: bool, request: PromoteRequest,
               checks_passed: int) -> PromoteResult:
        opened = self.ledger.open(event="promote", actor=self.actor, from_version=plan.from_version,
                                  to_version=plan.to_version, changes=plan.changes(), reason=(request.reason or "") if forced else "",
                                  forced=forced, lease=lease_for(self.env))
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
    except RelayError as exc:
        raise AwsError(
            f"{plan.event} of {plan.app} {plan.to_version or ''} in {plan.env} was applied, but its ledger record "
            f"could not be written: {exc.message}",
            hint=f"The aliases are moved (`relay status`). Ledger seq {opened.seq} stays open until {opened.lease_until}; "
                 "rerun the same command afterwards to record it.",
        ) from exc


def lease_for(env: Environment) -> dt.timedelta:
    """How long a run may hold the environment: the default, plus the canary's own waiting."""
    canary = env.canary.interval * len(env.canary.steps) if env.canary else 0
    return DEFAULT_LEASE + dt.timedelta(seconds=canary)
