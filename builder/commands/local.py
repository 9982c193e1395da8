"""`relay local up | down | status`: the embedded AWS for demos and development."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from builder.commands.options import Context, json_option
from builder.commands.output import emit_json

if TYPE_CHECKING:
    from builder.local.state import LocalStatus


@click.group()
def local() -> None:
    """An embedded AWS (moto) on 127.0.0.1 with registry, staging and prod accounts."""


@local.command()
@json_option
@click.pass_obj
def up(obj: Context, as_json: bool) -> None:
    """Start the local AWS for this project (or reuse the running one) and prepare its accounts."""
    from builder.local.lifecycle import local_up

    project = obj.project()
    state = local_up(project)
    if as_json:
        emit_json({"running": True, "endpoint": state.endpoint, "pid": state.pid, "region": state.region})
        return
    click.echo(f"local AWS up at {state.endpoint} (pid {state.pid})")
    click.echo(f"  registry/CI account {state.registry_account}, bucket {project.registry.bucket if project.registry else '-'}")
    for env in project.environments.values():
        click.echo(f"  environment {env.name}: account {env.account}, role {env.role}")
    click.echo(f"  signing key {state.trusted_key['keyid'][:16]} ({state.signing_key}), trusted by this project's commands")
    click.echo("Every relay command in this project now uses it (each says so); `relay local down` stops it.")


@local.command()
@json_option
@click.pass_obj
def down(obj: Context, as_json: bool) -> None:
    """Stop the local AWS this project's `relay local up` started."""
    from builder.local.lifecycle import local_down

    result = local_down(obj.root())
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo("local AWS stopped" if not result.running else render_status(result))


@local.command()
@json_option
@click.pass_obj
def status(obj: Context, as_json: bool) -> None:
    """Whether this project's local AWS runs, and where."""
    from builder.local.lifecycle import local_status

    result = local_status(obj.root())
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo(render_status(result))


def render_status(status: LocalStatus) -> str:
    if status.running:
        return f"local AWS is running at {status.endpoint} (pid {status.pid}); settings in {status.state_file}"
    return "local AWS is not running (start it with `relay local up`)"
