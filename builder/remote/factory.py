"""Wiring for `relay logs` and `relay invoke --env`: the environment's account, reached the way promote reaches it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from builder.aws.lambda_remote import LambdaRemote
from builder.aws.logs import CloudWatchLogs
from builder.aws.session import RequestCounter
from builder.config import Project
from builder.promote.canary import Clock, SystemClock
from builder.promote.factory import connect
from builder.remote.invoke import RemoteInvocation, invoke_alias
from builder.remote.logs import RemoteLogs
from builder.remote.target import alias_target

if TYPE_CHECKING:
    from builder.local.state import LocalSandbox


def open_logs(project: Project, env_name: str, function: str, *, sandbox: LocalSandbox | None = None,
              clock: Clock | None = None, counter: RequestCounter | None = None) -> RemoteLogs:
    """`function`'s logs in `env_name`, through the environment's own session (checked with STS)."""
    fn = project.function(function)  # a typo fails before any AWS call
    access = connect(project, env_name, sandbox=sandbox, counter=counter)
    return RemoteLogs(access.env, fn, lam=access.lam, groups=LambdaRemote(access.session, account=access.env.account),
                      events=CloudWatchLogs(access.session, account=access.env.account), clock=clock or SystemClock())


def run_remote_invoke(project: Project, env_name: str, function: str, event: Any, *,
                      sandbox: LocalSandbox | None = None, counter: RequestCounter | None = None) -> RemoteInvocation:
    """Invoke `function`'s alias in `env_name` with `event`: NotFound when it was never promoted there."""
    fn = project.function(function)
    access = connect(project, env_name, sandbox=sandbox, counter=counter)
    target = alias_target(access.env, fn, access.lam)
    return invoke_alias(target, LambdaRemote(access.session, account=access.env.account), event)
