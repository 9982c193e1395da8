"""`relay promote`, `relay rollback` and `relay status`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from builder.commands.options import Context, json_option
from builder.commands.output import can_ask, echo, emit_json, reporter_for
from builder.commands.output import width as output_width
from builder.commands.render.text import fit

if TYPE_CHECKING:
    from builder.config import Environment
    from builder.progress import Reporter
    from builder.promote.instructions import Plan

yes_option = click.option("--yes", "-y", is_flag=True,
                          help="Do not ask before changing a protected environment (for scripts).")


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
@yes_option
@json_option
@click.pass_obj
def promote(obj: Context, version: str, env_name: str, only: tuple[str, ...], dry_run: bool, force: bool,
            reason: str | None, allow_unqualified: bool, yes: bool, as_json: bool) -> None:
    """Promote release VERSION to an environment: verify, gate, plan, publish versions, move aliases."""
    from builder.aws.session import RequestCounter
    from builder.commands.render.promote import promote_summary
    from builder.commands.render.status import triggers_summary
    from builder.promote.factory import run_promote
    from builder.promote.promoter import PromoteRequest

    project = obj.project()
    reporter = reporter_for(as_json)
    show = PlanGate(project.environment(env_name), "promote", yes=yes, as_json=as_json, reporter=reporter)
    request = PromoteRequest(version, only=only, dry_run=dry_run, force=force, reason=reason,
                             allow_unqualified=allow_unqualified, on_plan=show)
    result = run_promote(project, env_name, request, sandbox=obj.sandbox(), counter=RequestCounter(),
                         reporter=reporter, environ=os.environ, on_signer=obj.signing_with)
    if as_json:
        emit_json(result.to_json())
        return
    width = output_width()
    echo(fit(promote_summary(result, width=width, plan_shown=show.shown), width))
    if result.triggers:
        echo("\n" + fit(triggers_summary(result.triggers, env=result.plan.env, alias=result.plan.alias), width))
    code_only = [f.function for f in result.plan.functions if f.manage == "code"]
    if code_only and result.status == "planned":
        echo(fit(f"\nConfiguration owned by infrastructure code (manage = \"code\"): {', '.join(code_only)}; "
                 "relay changes only their code, versions and alias.", width))


@click.command()
@click.option("--env", "env_name", required=True, metavar="ENV", help="Environment to roll back.")
@click.option("--to", "to_version", metavar="VERSION", help="Go back to this release instead of the previous one.")
@click.option("--only", multiple=True, metavar="FN", help="Roll back only this function (repeatable).")
@click.option("--dry-run", is_flag=True, help="Print the rollback plan; change nothing (no alias, no ledger record).")
@click.option("--force", is_flag=True,
              help="Take the environment over from a run that still holds it (a promotion that died); needs --reason.")
@click.option("--reason", metavar="TEXT", default="", help="Why (recorded in the ledger).")
@yes_option
@json_option
@click.pass_obj
def rollback(obj: Context, env_name: str, to_version: str | None, only: tuple[str, ...], dry_run: bool, force: bool,
             reason: str, yes: bool, as_json: bool) -> None:
    """Move aliases back to the previous version (no rebuild; works with only the environment's account)."""
    from builder.aws.session import RequestCounter
    from builder.promote.factory import run_rollback
    from builder.promote.rollback import RollbackRequest

    project = obj.project()
    reporter = reporter_for(as_json)
    show = PlanGate(project.environment(env_name), "rollback", yes=yes, as_json=as_json, reporter=reporter)
    request = RollbackRequest(to=to_version, only=only, force=force, reason=reason, dry_run=dry_run, on_plan=show)
    result = run_rollback(project, env_name, request, sandbox=obj.sandbox(), counter=RequestCounter(),
                          reporter=reporter, environ=os.environ, on_signer=obj.signing_with)
    if as_json:
        emit_json(result.to_json())
    else:
        from builder.commands.render.rollback import rollback_summary

        width = output_width()
        echo(fit(rollback_summary(result, width=width, plan_shown=show.shown), width))
    if result.ledger_problem and not as_json:
        reporter.note(f"the rollback was not recorded in the ledger: {result.ledger_problem}")


class PlanGate:
    """Shows a plan before it is applied and, for a protected environment, asks a person first.

    Called by the promoter (`on_plan`) after the gates passed and before
    anything changes. On a terminal a protected environment asks (default no;
    declining raises GateRefused, exit 9, nothing changed). Without a terminal,
    or in CI (`CI` set), it never blocks: it goes ahead and says so on stderr,
    as `sam deploy` does without `--confirm-changeset`. `--yes` skips the question.
    """

    def __init__(self, env: Environment, event: str, *, yes: bool, as_json: bool, reporter: Reporter) -> None:
        self.env = env
        self.event = event
        self.yes = yes
        self.as_json = as_json
        self.reporter = reporter
        self.shown = False  # the plan went out before it was applied (the summary does not repeat it)

    def __call__(self, plan: Plan) -> None:
        from builder.commands.render.promote import plan_summary

        asking = self.env.protected and not plan.is_noop and not self.yes and can_ask()
        if not self.as_json or asking:
            width = output_width(err=self.as_json)
            echo(fit(plan_summary(plan, width=width), width) + "\n", err=self.as_json)
            self.shown = not self.as_json
        if not self.env.protected or plan.is_noop:
            return
        what = f"{self.event} of {plan.app} in {self.env.name}"
        if self.yes:
            self._say(f"{self.env.name} is protected: going ahead with the {what} (--yes)")
            return
        if not asking:
            self._say(f"{self.env.name} is protected: not asking (no terminal, or CI), going ahead with the {what}; "
                      "pass --yes to say so")
            return
        try:
            agreed = click.confirm(f"{self.env.name} is protected. Go ahead with the {what} "
                                   f"({plan.from_version or '-'} -> {plan.to_version or '-'})?", default=False, err=True)
        except click.Abort:
            agreed = False
        if not agreed:
            from builder.errors import GateRefused

            raise GateRefused(f"the {what} was not confirmed: nothing was changed",
                              hint="Answer y to go ahead; scripts pass --yes.")

    def _say(self, message: str) -> None:
        """On stderr also with --json (whose reporter is silent): a protected environment changed unasked is news."""
        if self.as_json:
            echo(f"note: {message}", err=True)
        else:
            self.reporter.note(message)


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


