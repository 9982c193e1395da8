"""`relay promote`, `relay rollback` and `relay status`."""

from __future__ import annotations

import os

import click

from builder.commands.options import Context, json_option
from builder.commands.output import emit_json, reporter_for


@click.command()
@click.argument("version")
@click.option("--to", "env_name", required=True, metavar="ENV", help="Environment to promote to (from relay.toml).")
@click.option("--only", multiple=True, metavar="FN", help="Promote only this function (repeatable).")
@click.option("--dry-run", is_flag=True, help="Verify, check the gates and print the plan; change nothing.")
@click.option("--force", is_flag=True, help="Override refused gates (needs --reason; recorded in the ledger).")
@click.option("--reason", metavar="TEXT", help="Why the gates are overridden.")
@click.option("--allow-unqualified", is_flag=True,
              help="Start a canary although triggers invoke a function unqualified or at $LATEST (the canary "
                   "does not govern their traffic).")
@json_option
@click.pass_obj
def promote(obj: Context, version: str, env_name: str, only: tuple[str, ...], dry_run: bool, force: bool,
            reason: str | None, allow_unqualified: bool, as_json: bool) -> None:
    """Promote release VERSION to an environment: verify, gate, plan, publish versions, move aliases."""
    from builder.aws.session import RequestCounter
    from builder.commands.render.promote import promote_summary
    from builder.commands.render.status import triggers_summary
    from builder.promote.factory import run_promote
    from builder.promote.promoter import PromoteRequest

    project = obj.project()
    request = PromoteRequest(version, only=only, dry_run=dry_run, force=force, reason=reason,
                             allow_unqualified=allow_unqualified)
    result = run_promote(project, env_name, request, sandbox=obj.sandbox(), counter=RequestCounter(),
                         reporter=reporter_for(as_json), environ=os.environ)
    if as_json:
        emit_json(result.to_json())
        return
    click.echo(promote_summary(result))
    if result.triggers:
        click.echo("\n" + triggers_summary(result.triggers, env=result.plan.env, alias=result.plan.alias))
    code_only = [f.function for f in result.plan.functions if f.manage == "code"]
    if code_only and result.status == "planned":
        click.echo(f"\nConfiguration owned by infrastructure code (manage = \"code\"): {', '.join(code_only)}; "
                   "relay changes only their code, versions and alias.")


@click.command()
@click.option("--env", "env_name", required=True, metavar="ENV", help="Environment to roll back.")
@click.option("--to", "to_version", metavar="VERSION", help="Go back to this release instead of the previous one.")
@click.option("--only", multiple=True, metavar="FN", help="Roll back only this function (repeatable).")
@click.option("--force", is_flag=True,
              help="Take the environment over from a run that still holds it (a promotion that died); needs --reason.")
@click.option("--reason", metavar="TEXT", default="", help="Why (recorded in the ledger).")
@json_option
@click.pass_obj
def rollback(obj: Context, env_name: str, to_version: str | None, only: tuple[str, ...], force: bool, reason: str,
             as_json: bool) -> None:
    """Move aliases back to the previous version (no rebuild; works with only the environment's account)."""
    from builder.aws.session import RequestCounter
    from builder.promote.factory import run_rollback
    from builder.promote.rollback import RollbackRequest

    project = obj.project()
    reporter = reporter_for(as_json)
    result = run_rollback(project, env_name, RollbackRequest(to=to_version, only=only, force=force, reason=reason),
                          sandbox=obj.sandbox(), counter=RequestCounter(),
                          reporter=reporter, environ=os.environ)
    if as_json:
        emit_json(result.to_json())
    else:
        from builder.commands.render.rollback import rollback_summary

        click.echo(rollback_summary(result))
    if result.ledger_problem and not as_json:
        reporter.note(f"the rollback was not recorded in the ledger: {result.ledger_problem}")


@click.command()
@click.option("--env", "env_name", metavar="ENV", help="Only this environment.")
@click.option("--check", is_flag=True,
              help="Strict, for CI and monitoring: exit 11 when any environment cannot be read, not only when none "
                   "can (drift exits 14 either way).")
@json_option
@click.pass_obj
def status(obj: Context, env_name: str | None, check: bool, as_json: bool) -> None:
    """What runs where: alias -> Lambda version -> release -> digest, canary weights, drift, unqualified triggers.

    Exits 14 when anything drifted, 11 when no environment could be read (with --check: when any could not);
    the report is printed first either way.
    """
    from builder.commands.render.status import drift_fixes, status_summary
    from builder.errors import AwsError, DriftFound
    from builder.promote.factory import run_status

    report = run_status(obj.project(), env_name, sandbox=obj.sandbox())
    if as_json:
        emit_json(report.to_json())
    else:
        click.echo(status_summary(report))
    error: DriftFound | AwsError | None = None
    unreachable = report.unreachable
    if report.drifted:
        fixes = drift_fixes(report)
        error = DriftFound(f"drift in {', '.join(fix.split(': ', 1)[0] for fix in fixes)}"
                           + (f" (and {', '.join(e.env for e in unreachable)} could not be read)" if unreachable else ""),
                           hint=fixes[0].split(": ", 1)[1] + (" (the others: see above)" if len(fixes) > 1 else ""))
    elif unreachable and (check or len(unreachable) == len(report.environments)):
        error = AwsError(f"cannot read {', '.join(e.env for e in unreachable)}: {unreachable[0].error}"
                         + ("" if len(unreachable) == len(report.environments) else
                            "; what the other environments run is shown above"))
    if error is not None:
        error.reported = as_json
        raise error


