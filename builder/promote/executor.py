"""The executor: applies a Plan's instructions in one account.

Applying is two phases:

1. PREPARE, a thread per function (after publishing the layers the plan
   needs): create or update the function (configuration, then code from the
   verified registry blob), wait until Lambda says the update succeeded,
   check the `CodeSha256` it reports, and publish a version with that
   `CodeSha256` (and `RevisionId`) as precondition and the artifact's version
   and digest in its description. No alias moves in this phase, so a failure
   here leaves the environment serving what it served; the versions already
   published are reused by the next run.
   Then, still before any alias moves, the function-level settings the plan
   sets (`SetFunctionLevel`: tags, reserved concurrency), a thread per
   function; they are not part of any version, so a failure undoes nothing
   and a re-run sets what is still missing.
2. SWITCH: move the aliases (at once or as canary steps, see canary.py), each
   move conditional on the alias being where the plan read it (else RaceLost,
   exit 10). A failure or an alarm moves every alias this run moved back to
   where it was, unless someone else moved it since.

Each instruction is carried out by the method its class names (a `match` on
the class); nothing here prints, and `--dry-run` never reaches the executor.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import attrs

from builder.aws.errors import PreconditionFailed
from builder.aws.lambda_ import CodeSource, LambdaApi, S3Code, ZipCode
from builder.aws.s3 import S3Bucket
from builder.errors import AwsError, GateRefused, LimitExceeded, NotFound, RelayError, VerificationFailed
from builder.lambda_records import FunctionConfig
from builder.progress import Reporter, SilentReporter
from builder.promote.blobs import BlobSource
from builder.promote.canary import AlarmFired, AliasMover, Clock, SystemClock
from builder.promote.gates import AlarmsGate
from builder.promote.instructions import (
    CreateFunction,
    FunctionPlan,
    Plan,
    PublishLayer,
    PublishVersion,
    ReuseLayer,
    ReuseVersion,
    SetFunctionLevel,
    UpdateCode,
    UpdateConfiguration,
)
from builder.promote.records import FAILED, REVERTED
from builder.promote.state import DESCRIPTION_MAX, LayerMark, code_sha256_of
from builder.settings import FunctionSettings
from builder.textfmt import human_size

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
        alarms: AlarmsGate,
        clock: Clock | None = None,
        reporter: Reporter | None = None,
        deploy_bucket: S3Bucket | None = None,
        inline_limit: int = INLINE_LIMIT,
        workers: int = _WORKERS,
        before_apply: Callable[[Plan], None] | None = None,
    ) -> None:
        self.lam = lam
        self.blobs = blobs
        self.alarms = alarms
        self.clock = clock or SystemClock()
        self.reporter = reporter or SilentReporter()
        self.deploy_bucket = deploy_bucket
        self.inline_limit = inline_limit
        self.workers = workers
        # Called first thing in `apply`, after the plan was made and the lock taken (tests put another run's alias
        # move, or a delay, there: the moves are conditional on what the plan read, so a stale plan loses).
        self.before_apply = before_apply

    def apply(self, plan: Plan) -> Applied:
        if self.before_apply is not None:
            self.before_apply(plan)
        layers, layers_published = self._layers(plan)
        versions, published = self._prepare(plan, layers)
        self._function_level(plan, versions)
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
        arns = {layer.bundle: layers[layer.ref.identity] for layer in plan.layers}
        return Applied(versions, arns, published, layers_published)

    # -- layers ----------------------------------------------------------------------------------

    def _layers(self, plan: Plan) -> tuple[dict[tuple[str, str | None], str], tuple[str, ...]]:
        """Layer version ARNs by layer identity (sha256, architecture): reused, or published now."""
        arns: dict[tuple[str, str | None], str] = {}
        todo: list[PublishLayer] = []
        for layer in plan.layers:
            match layer:
                case ReuseLayer():
                    arns[layer.ref.identity] = layer.arn
                case PublishLayer():
                    todo.append(layer)
        # Versions of one layer go one after the other (their numbers are handed out in order); layers in parallel.
        by_name: dict[str, list[PublishLayer]] = {}
        for layer in todo:
            by_name.setdefault(layer.layer_name, []).append(layer)
        groups, failures = _parallel(lambda group: [(layer, self._publish_layer(plan, layer)) for layer in group],
                                     list(by_name.values()), self.workers, "relay-layer")
        if failures:
            errors = [(group[0], exc) for group, exc in failures]
            raise ApplyFailed(f"{plan.event} of {plan.app} in {plan.env} failed publishing layers: "
                              + "; ".join(f"{layer.bundle}: {_error_text(e)}" for layer, e in errors)
                              + "; no function or alias was changed",
                              cause=errors[0][1])
        arns.update({layer.ref.identity: arn for _, pairs in groups for layer, arn in pairs})
        return arns, tuple(layer.bundle for layer in todo)

    def _publish_layer(self, plan: Plan, layer: PublishLayer) -> str:
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

    def _prepare(self, plan: Plan, layers: Mapping[tuple[str, str | None], str]) -> tuple[dict[str, str], tuple[str, ...]]:
        versions: dict[str, str] = {}
        todo: list[FunctionPlan] = []
        for function in plan.functions:
            match function.version:
                case ReuseVersion(version=number):
                    versions[function.function] = number
                case PublishVersion():
                    todo.append(function)
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

    def _prepare_one(self, plan: Plan, function: FunctionPlan, layers: Mapping[tuple[str, str | None], str]) -> str:
        """Carry out the function's steps, in order, then publish its version; the Lambda version number."""
        assert isinstance(function.version, PublishVersion) and function.sha256
        name = function.function_name
        # Each update is conditional on the revision the plan (or the previous update) saw: a change
        # made by someone else in between makes Lambda refuse it (RaceLost) instead of overwriting it.
        config: FunctionConfig | None = None
        for step in function.steps:
            match step:
                case CreateFunction():
                    self.reporter.step(f"{function.function}: creating {name}")
                    config = self.lam.create_function(name, self._code(step.sha256, name),
                                                      step.settings.with_layer_arns(layers), role=step.role)
                case UpdateConfiguration():
                    self.reporter.step(f"{function.function}: setting {', '.join(step.changes)}")
                    config = self.lam.update_configuration(name, step.settings.with_layer_arns(layers),
                                                           revision_id=config.revision_id if config else step.revision_id)
                case UpdateCode():
                    self.reporter.step(f"{function.function}: uploading code {step.sha256[:12]}")
                    config = self.lam.update_code(name, self._code(step.sha256, name), step.settings,
                                                  revision_id=config.revision_id if config else step.revision_id)
            if config is not None:
                config = self._settle(name, config)
        if config is None:
            config = self.lam.get_function(name)
            if config is None:
                raise NotFound(f"{self.lam.where(name)} disappeared while being promoted")
        if config.code_sha256 != function.code_sha256:
            raise VerificationFailed(f"{self.lam.where(name)}: Lambda reports CodeSha256 {config.code_sha256} "
                                     f"after the update, expected {function.code_sha256}")
        return self._publish(function, function.version, function.version.settings.with_layer_arns(layers), config)

    def _function_level(self, plan: Plan, versions: Mapping[str, str]) -> None:
        todo = [f for f in plan.functions if f.function_level is not None]
        results, errors = _parallel(self._set_function_level, todo, self.workers, "relay-fnlevel")
        if errors:
            raise ApplyFailed(
                f"{plan.event} of {plan.app} {plan.to_version} in {plan.env} failed setting "
                + "; ".join(f"{f.function}: {_error_text(e)}" for f, e in errors)
                + f". No alias was moved; set: {_names(sorted(f.function for f, _ in results))}",
                cause=errors[0][1], versions=versions,
            )

    def _set_function_level(self, function: FunctionPlan) -> None:
        """Tags (set, then the keys relay no longer wants removed) and reserved concurrency, on the function."""
        step = function.function_level
        assert isinstance(step, SetFunctionLevel)
        name = function.function_name
        arn = step.function_arn
        if arn is None and (step.tags_set or step.tags_removed):
            found = self.lam.function_level(name)
            if found is None:
                raise NotFound(f"{self.lam.where(name)} disappeared while being promoted")
            arn = found.arn
        if step.tags_set:
            assert arn is not None
            self.reporter.step(f"{function.function}: tagging {', '.join(sorted(step.tags_set))}")
            self.lam.tag_function(name, arn, step.tags_set)
        if step.tags_removed:
            assert arn is not None
            self.reporter.step(f"{function.function}: removing tags {', '.join(step.tags_removed)}")
            self.lam.untag_function(name, arn, step.tags_removed)
        if step.sets_concurrency and step.reserved_concurrency is not None:
            self.reporter.step(f"{function.function}: reserved concurrency "
                               f"{step.reserved_concurrency_from if step.reserved_concurrency_from is not None else 'none'}"
                               f" -> {step.reserved_concurrency}")
            self.lam.put_reserved_concurrency(name, step.reserved_concurrency)

    def _publish(self, function: FunctionPlan, step: PublishVersion, settings: FunctionSettings,
                 config: FunctionConfig) -> str:
        name = function.function_name
        code_sha256 = function.code_sha256 or ""
        mark = step.mark.render()
        version = self.lam.publish_version(name, code_sha256=code_sha256, description=mark, revision_id=config.revision_id)
        if version.description != mark and version.code_sha256 == code_sha256:
            # Lambda returned an existing version (nothing changed since it was published, by hand):
            # change the description of $LATEST so that a new version, with relay's mark, is published.
            self.reporter.note(f"{function.function}: version {version.version} already holds this code without relay's "
                               "description; publishing a marked one")
            marked = attrs.evolve(settings, description=f"{settings.description} [{mark}]"[-DESCRIPTION_MAX:].strip())
            config = self._settle(name, self.lam.update_configuration(name, marked))
            version = self.lam.publish_version(name, code_sha256=code_sha256, description=mark,
                                               revision_id=config.revision_id)
        if version.code_sha256 != code_sha256:
            raise VerificationFailed(f"{self.lam.where(name)}: published version {version.version} has CodeSha256 "
                                     f"{version.code_sha256}, expected {code_sha256}")
        if version.description != mark:
            raise AwsError(f"{self.lam.where(name)}: published version {version.version} is described "
                           f"{version.description!r}, expected {mark!r}")
        self.reporter.step(f"{function.function}: published version {version.version}")
        return version.version

    def settle(self, name: str, config: FunctionConfig) -> FunctionConfig:
        """`_settle` for updates made outside a plan (rollback putting `$LATEST` back)."""
        return self._settle(name, config)

    def _settle(self, name: str, config: FunctionConfig) -> FunctionConfig:
        """Wait until Lambda has finished applying an update (State and LastUpdateStatus)."""
        if _updating(config):
            with self.reporter.waiting(f"Lambda finishing the update of {name}", seconds=WAIT_TIMEOUT, limit=True):
                config = self._poll(name, config)
        if config.state == "Failed" or config.last_update_status == "Failed":
            raise AwsError(f"{self.lam.where(name)}: the update failed: {config.last_update_reason or 'no reason given'}")
        return config

    def _poll(self, name: str, config: FunctionConfig) -> FunctionConfig:
        deadline = self.clock.now() + dt.timedelta(seconds=WAIT_TIMEOUT)
        while _updating(config):
            if self.clock.now() >= deadline:
                raise AwsError(f"{self.lam.where(name)}: still updating after {WAIT_TIMEOUT}s")
            self.clock.sleep(WAIT_POLL)
            fresh = self.lam.get_function(name)
            if fresh is None:
                raise NotFound(f"{self.lam.where(name)} disappeared while being updated")
            config = fresh
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
        # Content-addressed: when the key exists the same bytes are there already (Lambda's CodeSha256 is checked anyway).
        with contextlib.suppress(PreconditionFailed):
            self.deploy_bucket.put(key, data, if_none_match=True, content_type="application/zip",
                                   checksum_sha256=code_sha256_of(sha256))
        return S3Code(self.deploy_bucket.name, key)


_Item = TypeVar("_Item")
_Value = TypeVar("_Value")


def _parallel(work: Callable[[_Item], _Value], items: Sequence[_Item], workers: int,
              prefix: str) -> tuple[list[tuple[_Item, _Value]], list[tuple[_Item, BaseException]]]:
    """(results as (item, value), errors as (item, exception)) of `work` over `items`, every item run."""
    results: list[tuple[_Item, _Value]] = []
    errors: list[tuple[_Item, BaseException]] = []
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


def _updating(config: FunctionConfig) -> bool:
    return config.state == "Pending" or config.last_update_status == "InProgress"


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "Ctrl-C"  # what the person pressed; the ledger's failure reason says so too
    return exc.message if isinstance(exc, RelayError) else f"{type(exc).__name__}: {exc}"


def _names(items: Sequence[str]) -> str:
    return ", ".join(items) if items else "none"


def _stuck_text(stuck: Sequence[str]) -> str:
    return f"; NOT moved back: {'; '.join(stuck)}" if stuck else ""
