"""`relay diff V1 V2`: what changed between two releases."""

from __future__ import annotations

import click

from builder.commands.options import Context, json_option
from builder.commands.output import emit_json


@click.command()
@click.argument("old", metavar="V1")
@click.argument("new", metavar="V2")
@json_option
@click.pass_obj
def diff(obj: Context, old: str, new: str, as_json: bool) -> None:
    """What changed from release V1 to V2: functions, layers and their locked packages."""
    from builder.registry.diff import diff_versions
    from builder.registry.factory import open_store, trusted_keys

    project = obj.project()
    sandbox = obj.sandbox()
    result = diff_versions(open_store(project, sandbox=sandbox), project.name, old, new, trusted_keys(project, sandbox))
    if as_json:
        emit_json(result.to_json())
    else:
        from builder.commands.render.diff import diff_summary

        click.echo(diff_summary(result))
