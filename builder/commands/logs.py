"""`relay logs`: CloudWatch Logs of the versions an environment's alias points at."""

from __future__ import annotations

import json

import click

from builder.commands.options import Context, json_option
from builder.commands.output import emit_json


@click.command()
@click.argument("function")
@click.option("--env", "env_name", required=True, metavar="ENV", help="The environment whose alias' versions to show.")
@click.option("--since", default="10m", show_default=True, metavar="10m|1h|ISO",
              help="Start this long ago (s, m, h, d, w) or at this ISO 8601 time (UTC unless it names a zone).")
@click.option("--follow", "-f", is_flag=True, help="Keep polling for new lines until Ctrl-C (like `sam logs --tail`).")
@json_option
@click.pass_obj
def logs(obj: Context, function: str, env_name: str, since: str, follow: bool, as_json: bool) -> None:
    """Show FUNCTION's CloudWatch Logs in ENV: the streams of the versions its alias serves (both during a canary).

    Lines go to stdout, oldest first, as `time (UTC) [version] line`. With
    --json: one document (the alias, its versions, the log group, the events);
    with --follow --json: one JSON object per line and event.
    """
    from builder.commands.render.remote import log_line, logs_heading, no_lines_note
    from builder.remote.factory import open_logs
    from builder.remote.logs import LogSource, parse_since

    project = obj.project()
    remote = open_logs(project, env_name, function, sandbox=obj.sandbox())
    since_at = parse_since(since, remote.clock.now())
    if not follow:
        result = remote.read(since_at)
        if as_json:
            emit_json(result.to_json())
            return
        click.echo(logs_heading(result.source), err=True)
        for event in result.events:
            click.echo(log_line(event))
        if not result.events:
            click.echo(f"note: {no_lines_note(result)}", err=True)
        return
    # Ctrl-C ends the loop; the one error handler in cli.py turns it into exit 130.
    for item in remote.follow(since_at):
        if isinstance(item, LogSource):
            click.echo(logs_heading(item) + "; following (Ctrl-C stops)", err=True)
        elif as_json:
            click.echo(json.dumps(item.to_json(), sort_keys=True))
        else:
            click.echo(log_line(item))
