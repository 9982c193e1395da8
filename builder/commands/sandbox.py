"""`relay local up | down | status`: the embedded AWS for demos and development."""

from __future__ import annotations

import click

from builder.commands.options import Context, json_option
from builder.commands.output import emit_json
from builder.config import find_config, load_project


@click.group()
def local() -> None:
    """An embedded AWS (moto) on 127.0.0.1 with registry, staging and prod accounts."""


@local.command()
@json_option
@click.pass_obj
def up(obj: Context, as_json: bool) -> None:
    """Start the local AWS for this project (or reuse the running one) and prepare its accounts."""
    from builder.localaws import local_up

    project = load_project(obj.config, cwd=obj.directory)
    state = local_up(project)
    if as_json:
        emit_json({"running": True, "endpoint": state.endpoint, "pid": state.pid, "region": state.region})
        return
    click.echo(f"local AWS up at {state.endpoint} (pid {state.pid})")
    click.echo(f"  registry/CI account {state.registry_account}, bucket {project.registry.bucket if project.registry else '-'}")
    for env in project.environments.values():
        click.echo(f"  environment {env.name}: account {env.account}, role {env.role}")
    click.echo("Every relay command in this project now uses it; `relay local down` stops it.")


@local.command()
@json_option
@click.pass_obj
def down(obj: Context, as_json: bool) -> None:
    """Stop the local AWS this project's `relay local up` started."""
    from builder.localaws import local_down

    status = local_down(_root(obj))
    if as_json:
        emit_json(status.to_json())
    else:
        click.echo("local AWS stopped" if not status.running else status.summary())


@local.command()
@json_option
@click.pass_obj
def status(obj: Context, as_json: bool) -> None:
    """Whether this project's local AWS runs, and where."""
    from builder.localaws import local_status

    result = local_status(_root(obj))
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo(result.summary())


def _root(obj: Context):
    from pathlib import Path

    return find_config(obj.directory or Path.cwd()).parent if obj.config is None else obj.config.resolve().parent


