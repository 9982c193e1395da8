"""`relay invoke`: run a built function on a developer's own machine, the way Lambda runs it; or, with --env,
invoke the environment's alias in its account."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from builder.commands.options import Context, json_option
from builder.commands.output import emit_json, reporter_for
from builder.errors import InvokeFailed, UsageError

if TYPE_CHECKING:
    from builder.config import Project
    from builder.dist import FunctionBundle
    from builder.progress import Reporter
    from builder.runtime.invocation import Invocation


@click.command()
@click.argument("function")
@click.option("--event", "event_source", metavar="FILE|-", help="JSON event: a file, or - for stdin.  [default: {}]")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True, max=900), metavar="SECONDS",
              help="Kill the handler after this long.  [default: the function's timeout]")
@click.option("--version", "version", metavar="V",
              help="Run the function as published in release V (verified), instead of dist/.")
@click.option("--env", "env_name", metavar="ENV",
              help="Invoke the alias of ENV (from relay.toml) in its account instead of running the bundle locally.")
@json_option
@click.pass_obj
def invoke(obj: Context, function: str, event_source: str | None, timeout: float | None, version: str | None,
           env_name: str | None, as_json: bool) -> None:
    """Run FUNCTION's built bundle from dist/ (or release --version V) locally, the way Lambda runs it.

    With --env ENV, invoke FUNCTION's alias in ENV's account instead (the
    versions relay promoted there), with the log tail Lambda returns.
    The result goes to stdout; the handler's logs and Lambda's REPORT line to
    stderr. A handler that raises, crashes or times out prints Lambda's error
    document and exits 13.
    """
    from builder.runtime.event import read_event

    if env_name is not None:
        for given, flag in ((timeout, "--timeout"), (version, "--version")):
            if given is not None:
                raise UsageError(f"{flag} applies to a local invocation, not with --env",
                                 hint=f"--env invokes what {env_name}'s alias serves, with the function's own timeout.")
        _invoke_remote(obj, function, env_name, read_event(event_source, sys.stdin), as_json)
        return
    from builder.runtime.invocation import invoke_function

    event = read_event(event_source, sys.stdin)
    project = obj.project()
    reporter = reporter_for(as_json)
    sandbox = obj.sandbox()
    # With `relay local` up, a handler that calls AWS reaches the sandbox, as relay itself does.
    host_env = sandbox.child_environment(os.environ) if sandbox is not None else os.environ
    # A release's bundles are fetched into this folder only, and go with it.
    with tempfile.TemporaryDirectory(prefix="relay-release-") as tmp:
        bundle = _published_bundle(project, obj, function, version, Path(tmp), reporter) if version else None
        outcome = invoke_function(project, function, event=event, timeout=timeout, reporter=reporter, bundle=bundle,
                                  host_env=host_env)
    if as_json:
        emit_json(outcome.to_json())
        if not outcome.ok:
            # One JSON document on stdout: the error is in it, so no second error document.
            click.get_current_context().exit(InvokeFailed.exit_code)
        return
    click.echo(log_text(outcome), err=True)
    click.echo(json.dumps(outcome.response, indent=2, ensure_ascii=False))
    outcome.raise_for_error()


def _invoke_remote(obj: Context, function: str, env_name: str, event: Any, as_json: bool) -> None:
    from builder.commands.render.remote import invocation_heading
    from builder.remote.factory import run_remote_invoke

    outcome = run_remote_invoke(obj.project(), env_name, function, event, sandbox=obj.sandbox())
    if as_json:
        emit_json(outcome.to_json())
        if not outcome.ok:
            click.get_current_context().exit(InvokeFailed.exit_code)
        return
    click.echo(invocation_heading(outcome), err=True)
    click.echo(outcome.logs.rstrip("\n") if outcome.logs else "(no log tail in Lambda's reply)", err=True)
    click.echo(json.dumps(outcome.response, indent=2, ensure_ascii=False))
    outcome.raise_for_error()


def log_text(outcome: Invocation) -> str:
    """The invocation's log as CloudWatch shows it: START, the handler's output, END, REPORT."""
    lines = [f"START RequestId: {outcome.request_id} Version: {outcome.version}"]
    if outcome.logs:
        lines.append(outcome.logs.rstrip("\n"))
    if outcome.timed_out:
        lines.append(f"{outcome.request_id} Task timed out after {outcome.timeout_seconds:.2f} seconds")
    lines += [f"END RequestId: {outcome.request_id}", report_line(outcome)]
    return "\n".join(lines)


def report_line(outcome: Invocation) -> str:
    """Lambda's REPORT line: durations and memory, tab-separated."""
    parts = [
        f"REPORT RequestId: {outcome.request_id}",
        f"Duration: {outcome.duration_ms:.2f} ms",
        f"Billed Duration: {outcome.billed_duration_ms} ms",
        f"Memory Size: {outcome.memory_size_mb} MB",
        f"Max Memory Used: {outcome.max_memory_mb} MB",
    ]
    if outcome.init_duration_ms is not None:
        parts.append(f"Init Duration: {outcome.init_duration_ms:.2f} ms")
    if outcome.timed_out:
        parts.append("Status: timeout")
    return "\t".join(parts)


def _published_bundle(project: Project, obj: Context, function: str, version: str, into: Path,
                      reporter: Reporter) -> FunctionBundle:
    from builder.registry.factory import open_store, trusted_keys
    from builder.runtime.published import fetch_bundle

    sandbox = obj.sandbox()
    return fetch_bundle(open_store(project, sandbox=sandbox), trusted_keys(project, sandbox), project,
                        project.function(function), version,
                        into, reporter=reporter)
