"""`relay invoke` and `relay init`: a developer's own machine."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import click

from builder.commands.options import Context, json_option
from builder.commands.output import emit_json, reporter_for
from builder.errors import InvokeFailed
from builder.scaffold import DEFAULT_PIPELINE, DEFAULT_RUNTIME, PIPELINES, supported_runtimes


@click.command()
@click.argument("function")
@click.option("--event", "event_source", metavar="FILE|-", help="JSON event: a file, or - for stdin.  [default: {}]")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True, max=900), metavar="SECONDS",
              help="Kill the handler after this long.  [default: the function's timeout]")
@click.option("--version", "version", metavar="V",
              help="Run the function as published in release V (verified), instead of dist/.")
@json_option
@click.pass_obj
def invoke(obj: Context, function: str, event_source: str | None, timeout: float | None, version: str | None,
           as_json: bool) -> None:
    """Run FUNCTION's built bundle from dist/ (or release --version V) locally, the way Lambda runs it.

    The result goes to stdout; the handler's logs and Lambda's REPORT line to
    stderr. A handler that raises, crashes or times out prints Lambda's error
    document and exits 13.
    """
    from builder.invoke import invoke_function, read_event

    event = read_event(event_source, sys.stdin)
    project = obj.project()
    reporter = reporter_for(as_json)
    with tempfile.TemporaryDirectory(prefix="relay-release-") as tmp:
        bundle = _published_bundle(project, function, version, Path(tmp), reporter) if version else None
        outcome = invoke_function(project, function, event=event, timeout=timeout, reporter=reporter, bundle=bundle)
    if as_json:
        emit_json(outcome.to_json())
        if not outcome.ok:
            # One JSON document on stdout: the error is in it, so no second error document.
            click.get_current_context().exit(InvokeFailed.exit_code)
        return
    click.echo(outcome.log_text(), err=True)
    click.echo(json.dumps(outcome.response, indent=2, ensure_ascii=False))
    outcome.raise_for_error()


@click.command()
@click.argument("folder", required=False, default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", metavar="APP", help="The app's name.  [default: from the folder's name]")
@click.option("--runtime", type=click.Choice(supported_runtimes()), default=DEFAULT_RUNTIME, show_default=True)
@click.option("--pipeline", type=click.Choice(PIPELINES), default=DEFAULT_PIPELINE, show_default=True,
              help="Which CI definition to write.")
@json_option
@click.pass_obj
def init(obj: Context, folder: Path, name: str | None, runtime: str, pipeline: str, as_json: bool) -> None:
    """Create a new project in FOLDER (default: here) that locks, builds and invokes at once.

    Never overwrites a file: when any file it would write exists, it writes nothing.
    """
    from builder.scaffold import init_project

    target = folder if folder.is_absolute() or obj.directory is None else obj.directory / folder
    result = init_project(target, name=name, runtime=runtime, pipeline=pipeline)
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo(result.summary(shown_root=str(folder)))


def _published_bundle(project, function: str, version: str, into: Path, reporter):
    from builder.invoke import fetch_bundle
    from builder.registry.factory import open_store, trusted_keys

    return fetch_bundle(open_store(project), trusted_keys(project), project, project.function(function), version,
                        into, reporter=reporter)
