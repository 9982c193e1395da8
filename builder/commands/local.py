"""`relay local up | down | status`: the embedded AWS for demos and development."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from builder.commands.options import Context, json_option
from builder.commands.output import emit_json

if TYPE_CHECKING:
    from builder.config import Project
    from builder.local.accounts import Prepared
    from builder.local.lifecycle import LocalUp
    from builder.local.state import LocalStatus


@click.group()
def local() -> None:
    """An embedded AWS (moto) on 127.0.0.1 with registry, staging and prod accounts."""


@local.command()
@json_option
@click.pass_obj
def up(obj: Context, as_json: bool) -> None:
    """Start the local AWS for this project, or prepare the running one for the current relay.toml.

    On a running sandbox it adds what relay.toml needs and the sandbox lacks
    (new environments' roles, execution roles, the bucket) and keeps the rest:
    published releases, ledgers, the sandbox's key.
    """
    from builder.local.lifecycle import local_up

    project = obj.project()
    result = local_up(project)
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo(render_up(result, project))


def render_up(result: LocalUp, project: Project) -> str:
    """What `relay local up` tells a person: where the sandbox is, what it prepared, which key signs."""
    state = result.state
    if result.started:
        lines = [f"local AWS up at {state.endpoint} (pid {state.pid}); registry/CI account {state.registry_account}"]
        lines += [f"  {_prepared_line(p)}" for p in result.prepared]
    else:
        lines = [f"local AWS already running at {state.endpoint} (pid {state.pid}): kept its releases, ledgers "
                 "and signing key"]
        lines += [f"  prepared {_prepared_line(p)}" for p in result.new]
        if not result.new:
            lines.append(f"  nothing to prepare: the {len(result.prepared)} bucket(s) and role(s) relay.toml needs exist")
    keyid = state.trusted_key["keyid"][:16]
    signing = project.registry.signing if project.registry else None
    if signing is not None and signing.key is not None:
        lines.append(f"  signing: relay.toml's key {_shown(signing.key, project.root)} (the sandbox's {keyid} is trusted too)")
    elif signing is not None:
        lines.append(f"  signing: relay.toml's {signing.kind} key (the sandbox's {keyid} is trusted too)")
    else:
        lines.append(f"  signing: the sandbox's key {keyid} ({_shown(Path(state.signing_key), project.root)}), "
                     "trusted by this project only")
    lines.append("Every relay command in this project now uses it (each says so); `relay local down` stops it.")
    return "\n".join(lines)


def _prepared_line(item: Prepared) -> str:
    where = f" for {item.environment}" if item.environment else ""
    return f"{item.kind}{where}: {item.name}"


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


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
