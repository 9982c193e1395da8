"""`relay rollback`: move aliases back to the version they served before. No rebuild, no registry needed.

Where each alias goes back to:

- with the registry reachable, from the ledger (`previous_state`: the
  version live before the latest succeeded promotion not already undone);
- for a function the ledger knows nothing about, or with the registry out of
  reach (the on-call case: the build system is down), from the alias's own
  description, whose `previous`/`older` history relay keeps on every move;
- with `--to VERSION`, the newest Lambda version holding that release's
  bytes (by the registry's release document; without the registry, by the
  version named in the Lambda versions' descriptions).

Whatever the source, the target version's `CodeSha256` must be the digest
its description names (and the digest the ledger recorded), or nothing moves.
The run is recorded in the ledger when the registry is reachable; when it is
not, the rollback still happens and the result says the record is missing.
A ledger that is reachable but cannot be trusted (a record unreadable,
unsigned, edited, out of chain) refuses the rollback (exit 8) unless
`--force --reason`; the forced run still takes the lock and is recorded,
which repairs the ledger (see `builder.promote.ledger`). The run plans from
the ledger's head as it read it and takes the lock only there: a run that
came and went meanwhile makes it RaceLost (exit 10), nothing changed.

After a run that never closed (a promotion killed mid-canary), the aliases go
back to what the last run that *succeeded* made live (`live_state`), not to
the release before it: `relay rollback --force --reason`, which the busy
hint names, is the recovery.

Callers that invoke a function unqualified (API Gateway integrations, stream
and queue mappings) run `$LATEST`, which the alias move does not touch. So
after the aliases, each function's `$LATEST` gets the rolled-back version's
own code back (and, where relay manages the configuration, its settings):
the zip is read from the account (the version's `Code.Location`) and checked
against the version's `CodeSha256`; when that location cannot be fetched
(moto hands out one that does not exist) the verified registry blob of the
same digest is used instead. This also runs when the aliases are already in
place, so `relay rollback --to <live release>` puts a `$LATEST` changed by
hand back to what the alias serves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import attrs

from builder.aws.lambda_ import ZipCode
from builder.config import Environment, Project
from builder.errors import AwsError, NotFound, RaceLost, RelayError, VerificationFailed
from builder.frozen import to_tuple
from builder.progress import Reporter, SilentReporter
from builder.promote.blobs import BlobSource
from builder.promote.canary import Clock, SystemClock
from builder.promote.executor import ApplyFailed, Executor
from builder.promote.gates import Override
from builder.promote.instructions import Plan
from builder.promote.ledger import Ledger
from builder.promote.ledger_replay import LiveFunction, live_state, open_run, previous_state
from builder.promote.outcome import close_after_failure
from builder.promote.plan import RollbackTarget, plan_rollback
from builder.promote.records import FAILED, SUCCEEDED, LedgerRecord
from builder.promote.state import FunctionState, PublishedVersion, RemoteState, code_sha256_of, read_state
from builder.registry.catalog import Catalog
from builder.registry.release import Release
from builder.registry.signing import Signer, TrustedKeys
from builder.registry.store import Store
from builder.registry.versions import parse_version


@attrs.frozen
class RollbackRequest:
    to: str | None = None
    only: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    force: bool = False  # take the environment over from a run that holds it (a promotion that died)
    reason: str = ""
    dry_run: bool = False  # plan and stop: no alias moved, no $LATEST put back, no ledger record
    # Called with the plan before anything is changed (see `PromoteRequest.on_plan`); may raise to change nothing.
    on_plan: Callable[[Plan], None] | None = attrs.field(default=None, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        # The one `--force needs --reason` rule, before anything is read: also when the ledger is out of reach.
        Override(self.force, self.reason)


@attrs.frozen
class RollbackResult:
    status: str  # "succeeded" | "unchanged" | "planned" (dry run)
    plan: Plan
    versions: dict[str, str] = attrs.field(factory=dict)
    skipped: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)  # "fn: why"
    record: LedgerRecord | None = None
    ledger_problem: str | None = None  # why no ledger record was written
    requests: dict[str, int] = attrs.field(factory=dict)
    # function -> what `$LATEST` got back ("code of version 3", "code and settings of version 3")
    latest: dict[str, str] = attrs.field(factory=dict)
    latest_problems: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)  # "fn: why $LATEST was not put back"

    def to_json(self) -> dict:
        return {
            "status": self.status,
            "plan": self.plan.to_json(),
            "versions": dict(self.versions),
            "skipped": list(self.skipped),
            "ledger_seq": self.record.seq if self.record else None,
            "ledger_written": self.record is not None,
            "ledger_problem": self.ledger_problem,
            "latest_restored": dict(self.latest),
            "latest_problems": list(self.latest_problems),
            "aws_requests": {"total": sum(self.requests.values()), "by_operation": dict(self.requests)},
        }


@attrs.frozen
class _Skip:
    """Leave this function alone (and say why)."""

    reason: str


@attrs.frozen
class _Refuse:
    """Refuse the whole rollback (nothing moves)."""

    reason: str


class RollbackRunner:
    def __init__(
        self,
        project: Project,
        env: Environment,
        *,
        actor: str,
        executor: Executor,
        store: Store | None,
        registry_problem: str | None = None,
        clock: Clock | None = None,
        reporter: Reporter | None = None,
        ledger_signer: Signer | None = None,
        ledger_trusted: TrustedKeys | None = None,
    ) -> None:
        self.project = project
        self.env = env
        self.actor = actor
        self.ledger_signer = ledger_signer
        self.ledger_trusted = ledger_trusted
        self.executor = executor
        self.lam = executor.lam
        self.store = store
        self.registry_problem = registry_problem
        self.clock = clock or SystemClock()
        self.reporter = reporter or SilentReporter()
        self._head: int | None = None  # the ledger's head when this run read it (None: not read)

    def rollback(self, request: RollbackRequest) -> RollbackResult:
        if request.to:
            parse_version(request.to)
        names = list(request.only) or sorted(self.project.functions)
        functions = {name: self.project.function(name).function_name for name in names}
        self.reporter.step(f"reading {self.env.name} (account {self.env.account}): {len(functions)} function(s)")
        state = read_state(self.lam, env=self.env.name, region=self.env.region, alias=self.env.alias, functions=functions)
        ledger = self._ledger()
        records = self._records(ledger, request)
        release = self._release(request.to) if request.to else None
        # A run that never closed (it died mid-canary, or is still going): what is live is what the last run that
        # succeeded made live, so that is where the aliases go back to (not the release before it).
        dead = open_run(records) if records is not None and not request.to else None
        live = live_state(records) if dead is not None and records is not None else {}
        if dead is not None:
            self.reporter.note(f"seq {dead.seq} ({dead.event} {dead.from_version or '-'} -> {dead.to_version or '-'}) "
                               "never closed: going back to what the last run that succeeded made live")
        targets, skipped, problems = [], [], []
        for name in names:
            found = self._target(state.function(name), request.to, release, records, live.get(name))
            if isinstance(found, _Refuse):
                problems.append(found.reason)
            elif isinstance(found, _Skip):
                skipped.append(f"{name}: {found.reason}")
            else:
                targets.append(found)
        if problems:
            raise NotFound(f"rollback refused: {'; '.join(problems)}", hint="Nothing was changed. Check `relay status`.")
        if not targets:
            raise NotFound(f"nothing to roll back in {self.env.name}: {'; '.join(skipped)}",
                           hint="Nothing was changed; `relay rollback --to VERSION` names a release to go back to.")
        plan = plan_rollback(self.project.name, self.env, state, targets, to_version=request.to)
        if request.dry_run:
            return RollbackResult("planned", plan,
                                  {f.function: f.target_version for f in plan.functions if f.target_version}, skipped)
        if request.on_plan is not None:
            request.on_plan(plan)
        if plan.is_noop and dead is not None and ledger is not None and self.store is not None:
            result = self._take_over(plan, skipped, ledger, request)
        elif plan.is_noop:
            result = RollbackResult("unchanged", plan,
                                    {f.function: f.target_version for f in plan.functions if f.target_version},
                                    skipped, ledger_problem=None)
        else:
            result = self._apply(plan, skipped, ledger, request)
        restored, problems = self._restore_latest(plan, state)
        return attrs.evolve(result, latest=restored, latest_problems=problems)

    # -- $LATEST, for the callers that bypass the alias ---------------------------------------------------

    def _restore_latest(self, plan: Plan, state: RemoteState) -> tuple[dict[str, str], list[str]]:
        restored: dict[str, str] = {}
        problems: list[str] = []
        for function in plan.functions:
            fs = state.function(function.function)
            version = fs.version(function.target_version)
            if fs.latest is None or version is None:
                continue
            try:
                done = self._restore_one(fs, version)
            except RelayError as exc:
                problems.append(f"{function.function}: {exc.message}")
                continue
            if done:
                restored[function.function] = done
        return restored, problems

    def _restore_one(self, fs: FunctionState, version: PublishedVersion) -> str | None:
        """Put the version's code (and, where relay owns it, its configuration) back on `$LATEST`; what was done."""
        latest = fs.latest
        assert latest is not None
        name = fs.function_name
        done = []
        if latest.code_sha256 != version.config.code_sha256:
            self.reporter.step(f"{fs.function}: putting version {version.number}'s code back on $LATEST")
            config = self.lam.update_code(name, ZipCode(self._version_zip(fs, version)), version.config.settings,
                                          revision_id=latest.revision_id)
            latest = self.executor.settle(name, config)
            if latest.code_sha256 != version.config.code_sha256:
                raise VerificationFailed(f"{self.lam.where(name)}: $LATEST reports CodeSha256 {latest.code_sha256} "
                                         f"after the update, expected {version.config.code_sha256}")
            done.append("code")
        if self.env.manage_for(fs.function) != "code":
            ours = attrs.evolve(version.config.settings, description=latest.settings.description)
            differing = [n for n in ours.differences(latest.settings) if n != "architecture"]
            if differing:
                self.reporter.step(f"{fs.function}: putting version {version.number}'s {', '.join(differing)} back on $LATEST")
                self.executor.settle(name, self.lam.update_configuration(name, ours, revision_id=latest.revision_id))
                done.append("settings")
        return f"{' and '.join(done)} of version {version.number}" if done else None

    def _version_zip(self, fs: FunctionState, version: PublishedVersion) -> bytes:
        """The version's own zip from the account; the registry's blob of the same digest when that cannot be read."""
        data = self.lam.version_code(fs.function_name, version.number)
        if data is not None:
            if code_sha256_of(hashlib.sha256(data).hexdigest()) != version.config.code_sha256:
                raise VerificationFailed(f"{self.lam.where(fs.function_name)}: version {version.number}'s code "
                                         f"does not hash to its CodeSha256 {version.config.code_sha256}")
            return data
        digest = version.trusted_digest
        if self.store is None or digest is None:
            raise AwsError(f"version {version.number}'s code could not be downloaded from its Code.Location, "
                           "and the registry is out of reach",
                           hint=f"$LATEST still holds the newer code; rerun `relay rollback --env {self.env.name}` "
                                "when the registry answers.")
        return BlobSource(self.store).fetch(digest)

    # -- where to -------------------------------------------------------------------------------------

    def _target(self, fs: FunctionState, to: str | None, release: Release | None,
                records, live: LiveFunction | None = None) -> RollbackTarget | _Skip | _Refuse:
        if not fs.exists or fs.alias is None:
            return _Skip(f"no alias {self.env.alias} on {fs.function_name}")
        mark = fs.alias_mark
        history = mark.history() if mark is not None and mark.app == self.project.name else ()
        current = fs.alias.function_version
        if to is not None:
            return self._target_release(fs, to, release, (current, *history))
        if live is not None and live.lambda_version is not None:
            after = history[history.index(live.lambda_version) + 1:] if live.lambda_version in history else history
            return RollbackTarget(fs.function, live.lambda_version, "ledger (the last run that succeeded)", after,
                                  live.digest)
        change = previous_state(records, function=fs.function) if records is not None else None
        if change is not None and change.from_version:
            after = history[history.index(change.from_version) + 1:] if change.from_version in history else history
            return RollbackTarget(fs.function, change.from_version, "ledger", after, change.from_digest)
        if history:
            return RollbackTarget(fs.function, history[0], "alias description", history[1:])
        return _Skip("nothing to roll back to (no earlier version recorded)")

    def _target_release(self, fs: FunctionState, to: str, release: Release | None,
                        history: tuple[str, ...]) -> RollbackTarget | _Skip | _Refuse:
        app = self.project.name
        if release is not None:
            entry = release.function(fs.function)
            if entry is None:
                return _Skip(f"not part of {app}@{to}")
            holding = [v for v in fs.versions if v.carries(app, fs.function, entry.sha256)]
            wanted = f"sha256 {entry.sha256[:12]}.. ({app}@{to})"
        else:
            holding = [v for v in fs.versions if v.mark is not None and (v.mark.app, v.mark.name, v.mark.version)
                       == (app, fs.function, to) and v.trusted_digest]
            wanted = f"{app}@{to} (by the versions' descriptions; the registry is out of reach)"
        if not holding:
            return _Refuse(f"{fs.function}: no Lambda version of {fs.function_name} holds {wanted}")
        target = holding[-1]
        after = history if history and history[0] != target.number else history[1:]
        return RollbackTarget(fs.function, target.number, "--to", after, target.trusted_digest)

    # -- the registry, when it answers ------------------------------------------------------------------

    def _ledger(self) -> Ledger | None:
        if self.store is None:
            return None
        return Ledger(self.store, self.project.name, self.env.name, clock=self.clock.now,
                      signer=self.ledger_signer, trusted=self.ledger_trusted)

    def _records(self, ledger: Ledger | None, request: RollbackRequest) -> list[LedgerRecord] | None:
        """The ledger's accepted records; a ledger that cannot be trusted refuses the rollback unless forced.

        Forced, the run goes ahead from the records that are accepted, and still
        takes the lock: its started record is the signed repair (see `LedgerScan.acknowledged`).
        """
        if ledger is None:
            self.reporter.note(f"the registry is out of reach ({self.registry_problem}); "
                               "rolling back from the aliases' own descriptions")
            return None
        try:
            scan = ledger.scan()
        except (AwsError, NotFound) as exc:
            self._offline(exc.message)
            return None
        self._head = scan.head  # the run plans from this; its lock is taken only if nothing was appended since
        if scan.problems:
            if not request.force:
                raise VerificationFailed(f"rollback refused: {ledger.problem_message(scan)}",
                                         hint="Nothing was changed. " + ledger.repair_hint)
            self.reporter.note(f"{ledger.problem_message(scan)}; going ahead (forced: {request.reason}) from the "
                               "records that verify, and recording this run")
        return scan.accepted

    def _release(self, version: str) -> Release | None:
        if self.store is None:
            return None
        try:
            entry = Catalog(self.store, self.project.name).read(version)
        except AwsError as exc:  # out of reach: roll back from the aliases alone
            self._offline(exc.message)
            return None
        # A release document that does not verify is refused (VerificationFailed, exit 8), not taken
        # for an unreachable registry.
        if entry is None:
            raise NotFound(f"{self.project.name}@{version} is not published", hint="`relay versions` lists what exists.")
        return entry.release

    def _offline(self, why: str) -> None:
        self.reporter.note(f"the registry cannot be read ({why}); rolling back from the aliases' own descriptions")
        self.store = None
        self.registry_problem = why

    # -- apply --------------------------------------------------------------------------------------------

    def _take_over(self, plan: Plan, skipped: Sequence[str], ledger: Ledger, request: RollbackRequest) -> RollbackResult:
        """The aliases already serve what the last succeeded run made live: take the dead run's lock, record it."""
        opened = ledger.open(event="rollback", actor=self.actor, from_version=plan.from_version,
                             to_version=plan.to_version, changes=plan.changes(), forced=request.force,
                             reason=request.reason, take_over=request.force, expect_head=self._head)
        versions = {f.function: f.target_version for f in plan.functions if f.target_version}
        record = ledger.close(opened, status=SUCCEEDED, changes=plan.changes(versions))
        return RollbackResult("unchanged", plan, versions, skipped, record)


    def _apply(self, plan: Plan, skipped: Sequence[str], ledger: Ledger | None,
               request: RollbackRequest) -> RollbackResult:
        opened: LedgerRecord | None = None
        problem = self.registry_problem
        writer = ledger if self.store is not None else None
        if writer is not None:
            try:
                opened = writer.open(event="rollback", actor=self.actor, from_version=plan.from_version,
                                     to_version=plan.to_version, changes=plan.changes(),
                                     forced=request.force, reason=request.reason, take_over=request.force,
                                     expect_head=self._head)
            except RaceLost:
                raise
            except (AwsError, NotFound) as exc:
                problem = exc.message
                self.reporter.note(f"the ledger cannot be written ({problem}); rolling back anyway")
        try:
            applied = self.executor.apply(plan)
        except ApplyFailed as exc:
            if writer is not None and opened is not None:
                close_after_failure(writer, opened, exc, status=exc.status, changes=plan.changes(exc.versions))
            raise
        except BaseException as exc:
            if writer is not None and opened is not None:
                close_after_failure(writer, opened, exc, status=FAILED)
            raise
        record = None
        if writer is not None and opened is not None:
            try:
                record = writer.close(opened, status=SUCCEEDED, changes=plan.changes(applied.versions))
            except (AwsError, NotFound) as exc:
                problem = exc.message
        return RollbackResult(SUCCEEDED, plan, dict(applied.versions), skipped, record,
                              None if record is not None else (problem or "the registry is not configured"))
