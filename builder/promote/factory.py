"""Wiring from the project config: one session per environment, the registry, the executors.

The commands call these; nothing deeper builds a client. Each environment is
reached with its own assumed-role session, and `connect` refuses to return
one that STS says is in another account. The `sandbox` (`relay local`'s, when
the command found one) is handed through to every session and to the trusted keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import attrs

from builder.aws.cloudwatch import CloudWatch
from builder.aws.lambda_ import LambdaApi
from builder.aws.s3 import S3Bucket
from builder.aws.session import AwsSession, AwsTarget, RequestCounter, open_session
from builder.aws.sts import CallerIdentity, Sts, base_caller, require_account
from builder.config import Environment, Project
from builder.errors import AwsError, ConfigError, NotFound
from builder.progress import Reporter
from builder.promote.actor import Actor, CiRun, Who, ci_run
from builder.promote.blobs import BlobSource
from builder.promote.canary import Clock, SystemClock
from builder.promote.executor import Executor
from builder.promote.gates import AlarmsGate
from builder.promote.instructions import Plan
from builder.promote.promoter import Promoter, PromoteRequest, PromoteResult
from builder.promote.rollback import RollbackRequest, RollbackResult, RollbackRunner
from builder.promote.status import ReleaseLookup, StatusReport, collect_status
from builder.registry.factory import SigningKey, choose_signer, open_store, through, trusted_keys
from builder.registry.signing import Signer, TrustedKeys
from builder.registry.store import S3Store

if TYPE_CHECKING:
    from builder.local.state import LocalSandbox


@attrs.frozen
class EnvironmentAccess:
    """One environment's account, reached through its own session (checked with STS)."""

    env: Environment
    session: AwsSession
    identity: CallerIdentity
    lam: LambdaApi
    cloudwatch: CloudWatch
    deploy_bucket: S3Bucket | None = None
    ci: CiRun | None = None  # the CI run this command is part of (None: not in CI, or not told)

    @property
    def actor(self) -> Actor:
        """The role session's ARN, carrying who is behind it (the base credentials, asked once; the CI run)."""
        return Actor(self.identity.arn, Who(base_caller(self.session).arn, self.ci))


def environment_target(project: Project, env: Environment, sandbox: LocalSandbox | None = None) -> AwsTarget:
    return through(sandbox, AwsTarget(region=env.region, role=env.role, external_id=env.external_id, account=env.account,
                                      profile=env.profile,
                                      session_name=f"relay-{project.name}-{env.name}"[:64]))


def connect(
    project: Project, env_name: str, *, sandbox: LocalSandbox | None = None, counter: RequestCounter | None = None,
    environ: Mapping[str, str] | None = None,
) -> EnvironmentAccess:
    """A session in the environment's account, refused when STS says it is anywhere else.

    `environ`: the process environment (the command layer's `os.environ`), read only for the CI run's metadata.
    """
    env = project.environment(env_name)
    session = open_session(environment_target(project, env, sandbox), counter=counter)
    identity = Sts(session).caller_identity()
    require_account(identity, env.account, what=f"environment {env.name}")
    return EnvironmentAccess(
        env=env, session=session, identity=identity,
        lam=LambdaApi(session, account=env.account),
        cloudwatch=CloudWatch(session, account=env.account),
        deploy_bucket=S3Bucket(session, env.deploy_bucket) if env.deploy_bucket else None,
        ci=ci_run(environ) if environ is not None else None,
    )


def open_registry(
    project: Project, *, sandbox: LocalSandbox | None = None, counter: RequestCounter | None = None,
) -> S3Store:
    return open_store(project, sandbox=sandbox, counter=counter)


def probe_registry(
    project: Project, *, sandbox: LocalSandbox | None = None, counter: RequestCounter | None = None,
) -> tuple[S3Store | None, str | None]:
    """The registry when it can be reached, else (None, why not). For rollback and status, which work without it."""
    try:
        store = open_store(project, sandbox=sandbox, counter=counter)
        next(iter(store.list(store.layout.key(f"{project.name}/"), page_size=1)), None)
    except (AwsError, NotFound) as exc:
        return None, exc.message
    return store, None


def ledger_signer(
    project: Project, store: S3Store | None, *, sandbox: LocalSandbox | None = None,
    on_signer: Callable[[SigningKey], None] | None = None,
) -> Signer | None:
    """The key that signs ledger records: the registry's signer (`choose_signer`), None when there is none here.

    CI promotes with the pipeline that publishes, so it holds the release key
    (or kms:Sign on it); an environment whose deployer must not hold it lists
    its own key in `trusted_keys` and sets RELAY_SIGNING_KEY in its pipeline.
    Without any key, records are written unsigned: accepted only until the
    ledger's first signed record (see `builder.promote.ledger`).
    """
    if store is None or project.registry is None:
        return None
    try:
        key = choose_signer(project, store, sandbox=sandbox)
    except ConfigError:
        return None
    if on_signer is not None:
        on_signer(key)  # the command says which key signs this run's records, as relay publish does
    return key.signer


def ledger_trust(project: Project, sandbox: LocalSandbox | None = None) -> TrustedKeys | None:
    """The keys that verify ledger records: the release keys (None without a registry)."""
    keys = trusted_keys(project, sandbox) if project.registry is not None else None
    return keys or None  # no keys pinned: nothing to check signatures with (promote refuses without keys anyway)


def create_executor(
    access: EnvironmentAccess,
    store: S3Store | None,
    *,
    clock: Clock | None = None,
    reporter: Reporter | None = None,
    before_apply: Callable[[Plan], None] | None = None,
) -> Executor:
    return Executor(
        access.lam,
        blobs=BlobSource(store) if store is not None else None,
        alarms=AlarmsGate(access.cloudwatch, access.env.alarms),
        clock=clock or SystemClock(),
        reporter=reporter,
        deploy_bucket=access.deploy_bucket,
        before_apply=before_apply,
    )


def create_promoter(
    project: Project,
    access: EnvironmentAccess,
    store: S3Store,
    *,
    sandbox: LocalSandbox | None = None,
    clock: Clock | None = None,
    reporter: Reporter | None = None,
    before_apply: Callable[[Plan], None] | None = None,
    on_signer: Callable[[SigningKey], None] | None = None,
) -> Promoter:
    clock = clock or SystemClock()
    return Promoter(
        project, access.env, actor=access.actor, lam=access.lam,
        executor=create_executor(access, store, clock=clock, reporter=reporter, before_apply=before_apply),
        store=store, trusted=trusted_keys(project, sandbox), clock=clock, reporter=reporter,
        ledger_signer=ledger_signer(project, store, sandbox=sandbox, on_signer=on_signer),
        required_lambda=_required_lambda(project, access.env, sandbox),
    )


def _required_lambda(project: Project, env: Environment, sandbox: LocalSandbox | None) -> Callable[[], LambdaApi] | None:
    """Opens a session in `env.requires`'s account (its own role) when the requires gate checks what it serves."""
    required = env.requires
    if not required:
        return None
    return lambda: connect(project, required, sandbox=sandbox).lam


def run_promote(
    project: Project,
    env_name: str,
    request: PromoteRequest,
    *,
    sandbox: LocalSandbox | None = None,
    counter: RequestCounter | None = None,
    clock: Clock | None = None,
    reporter: Reporter | None = None,
    environ: Mapping[str, str] | None = None,
    on_signer: Callable[[SigningKey], None] | None = None,
) -> PromoteResult:
    """`relay promote`: connect to the environment and the registry, then promote."""
    access = connect(project, env_name, sandbox=sandbox, counter=counter, environ=environ)
    store = open_registry(project, sandbox=sandbox, counter=counter)
    result = create_promoter(project, access, store, sandbox=sandbox, clock=clock, reporter=reporter,
                             on_signer=on_signer).promote(request)
    return attrs.evolve(result, requests=counter.by_operation() if counter else {})


def create_rollback(
    project: Project,
    access: EnvironmentAccess,
    store: S3Store | None,
    *,
    registry_problem: str | None = None,
    clock: Clock | None = None,
    reporter: Reporter | None = None,
    sandbox: LocalSandbox | None = None,
    on_signer: Callable[[SigningKey], None] | None = None,
) -> RollbackRunner:
    clock = clock or SystemClock()
    return RollbackRunner(project, access.env, actor=access.actor,
                          executor=create_executor(access, None, clock=clock, reporter=reporter),
                          store=store, registry_problem=registry_problem, clock=clock, reporter=reporter,
                          ledger_signer=ledger_signer(project, store, sandbox=sandbox, on_signer=on_signer),
                          ledger_trusted=ledger_trust(project, sandbox) if store is not None else None)


def run_rollback(
    project: Project,
    env_name: str,
    request: RollbackRequest,
    *,
    sandbox: LocalSandbox | None = None,
    counter: RequestCounter | None = None,
    clock: Clock | None = None,
    reporter: Reporter | None = None,
    environ: Mapping[str, str] | None = None,
    on_signer: Callable[[SigningKey], None] | None = None,
) -> RollbackResult:
    """`relay rollback`: needs the environment's account; uses the registry only when it answers."""
    access = connect(project, env_name, sandbox=sandbox, counter=counter, environ=environ)
    store, problem = (probe_registry(project, sandbox=sandbox, counter=counter) if project.registry
                      else (None, "no [registry] in the config"))
    result = create_rollback(project, access, store, registry_problem=problem, clock=clock, reporter=reporter,
                             sandbox=sandbox, on_signer=on_signer).rollback(request)
    return attrs.evolve(result, requests=counter.by_operation() if counter else {})


def run_status(
    project: Project,
    env_name: str | None = None,
    *,
    sandbox: LocalSandbox | None = None,
    counter: RequestCounter | None = None,
) -> StatusReport:
    """`relay status`: every environment (or one), each through its own session; the registry when it answers."""
    envs = [project.environment(env_name)] if env_name else [project.environments[n] for n in sorted(project.environments)]
    if not envs:
        raise ConfigError(f"{project.config_file.name}: no [environments] to show",
                          hint="Declare [environments.<name>] with account, region and role.")
    store, problem = (probe_registry(project, sandbox=sandbox, counter=counter) if project.registry
                      else (None, "no [registry] in the config"))
    releases = ReleaseLookup(store, project.name) if store is not None else None
    return collect_status(project, envs, lambda env: connect(project, env.name, sandbox=sandbox, counter=counter).lam,
                          releases, problem)
