"""`relay history`, `relay diff` and `relay iam-policy`."""

from __future__ import annotations

import json

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
    from builder.promote.ledger import Ledger, read_history
    from builder.registry.factory import open_store

    project = obj.project()
    env = project.environment(env_name)
    result = read_history(Ledger(open_store(project), project.name, env.name), limit=limit)
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo(result.summary())


@click.command()
@click.argument("old", metavar="V1")
@click.argument("new", metavar="V2")
@json_option
@click.pass_obj
def diff(obj: Context, old: str, new: str, as_json: bool) -> None:
    """What changed from release V1 to V2: functions, layers and their locked packages."""
    from builder.promote.diff import diff_versions
    from builder.registry.factory import open_store, trusted_keys

    project = obj.project()
    result = diff_versions(open_store(project), project.name, old, new, trusted_keys(project))
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo(result.summary())


@click.command("iam-policy")
@click.option("--role", type=click.Choice(["publisher", "deployer"]), required=True,
              help="publisher: the CI role that runs `relay publish`; deployer: the role relay assumes in an environment.")
@click.option("--env", "env_name", metavar="ENV", help="Only this environment's deployer (default: every environment).")
@json_option
@click.pass_obj
def iam_policy(obj: Context, role: str, env_name: str | None, as_json: bool) -> None:
    """Least-privilege IAM policy documents, scoped to the app's functions, layers and registry prefix."""
    from builder.promote.iam import iam_policies

    if env_name and role != "deployer":
        raise click.UsageError("--env applies to --role deployer only")
    documents = iam_policies(obj.project(), role, env=env_name)
    if as_json:
        emit_json({"role": role, "policies": [d.to_json() for d in documents]})
        return
    for index, doc in enumerate(documents):
        if index:
            click.echo("")
        where = f" in account {doc.account}" if doc.account else ""
        click.echo(f"# {doc.name}: {doc.kind} policy{where}; attach to {doc.attach_to}")
        click.echo(json.dumps(doc.document, indent=2))


