"""`relay history`: an environment's ledger, newest first."""

from __future__ import annotations

import click

from builder.commands.options import Context, json_option
from builder.commands.output import emit_json


@click.command()
@click.option("--env", "env_name", required=True, metavar="ENV", help="The environment whose ledger to show.")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True, help="Show the newest N entries.")
@json_option
@click.pass_obj
def history(obj: Context, env_name: str, limit: int, as_json: bool) -> None:
    """The ledger of an environment, newest first: promotions, rollbacks and refusals."""
    from builder.promote.history import read_history
    from builder.promote.ledger import Ledger
    from builder.registry.factory import open_store

    project = obj.project()
    env = project.environment(env_name)
    from builder.promote.factory import ledger_trust

    sandbox = obj.sandbox()
    ledger = Ledger(open_store(project, sandbox=sandbox), project.name, env.name, trusted=ledger_trust(project, sandbox))
    result = read_history(ledger, limit=limit)
    if as_json:
        emit_json(result.to_json())
    else:
        from builder.commands.render.history import history_summary

        click.echo(history_summary(result))
