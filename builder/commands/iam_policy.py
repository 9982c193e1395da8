"""`relay iam-policy`: least-privilege IAM policy documents for the publisher and the deployers."""

from __future__ import annotations

import click

from builder.commands.options import Context, json_option
from builder.commands.output import emit_json


@click.command("iam-policy")
@click.option("--role", type=click.Choice(["publisher", "deployer"]), required=True,
              help="publisher: the CI role that runs `relay publish`; deployer: the role relay assumes in an environment.")
@click.option("--env", "env_name", metavar="ENV", help="Only this environment's deployer (default: every environment).")
@json_option
@click.pass_obj
def iam_policy(obj: Context, role: str, env_name: str | None, as_json: bool) -> None:
    """Least-privilege IAM policy documents, scoped to the app's functions, layers and registry prefix."""
    from builder.iam_policy import iam_policies

    if env_name and role != "deployer":
        raise click.UsageError("--env applies to --role deployer only")
    documents = iam_policies(obj.project(), role, env=env_name)
    if as_json:
        emit_json({"role": role, "policies": [d.to_json() for d in documents]})
    else:
        from builder.commands.render.iam_policy import policies_text

        click.echo(policies_text(documents))
