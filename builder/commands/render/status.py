"""`relay status` as people read it: environments x functions, canary weights, drift, and traffic the alias does not govern.

`drift_fixes` says, per drifted function, the command that puts it back; the
DRIFT line and `relay status --check`'s hint use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from builder.commands.render.text import table
from builder.lambda_records import Trigger
from builder.promote.status import ConfigDrift, EnvironmentStatus, FunctionStatus, StatusReport


def status_summary(report: StatusReport) -> str:
    rows = []
    for env in report.environments:
        if env.error:
            rows.append([env.env, "-", "-", "-", "-", "-", "-", f"cannot read: {env.error}"])
            continue
        rows += [_row(env.env, env.alias, f) for f in env.functions]
    lines = [table(rows, ["env", "function", "alias", "artifact", "sha256", "canary", "config", "state"])]
    if report.registry_problem:
        lines.append(f"\n(registry out of reach: {report.registry_problem}; digests checked against the versions' "
                     "own descriptions only, configuration not compared)")
    for env in report.environments:
        triggers = {f.function: f.triggers for f in env.functions if f.triggers}
        if triggers:
            lines += ["", triggers_summary(triggers, env=env.env, alias=env.alias)]
    fixes = drift_fixes(report)
    if fixes:
        lines += ["", "DRIFT: changed outside relay. To put it back:", *(f"  {fix}" for fix in fixes)]
    return "\n".join(lines)


def triggers_summary(triggers: Mapping[str, Sequence[Trigger]], *, env: str, alias: str) -> str:
    """Triggers that invoke functions unqualified or at $LATEST: promotion does not govern their traffic."""
    rows = [[fn, t.kind, t.source, t.qualifier or "(unqualified)"] for fn, found in sorted(triggers.items()) for t in found]
    return "\n".join([
        f"Not governed by promotion in {env}: these invoke the function unqualified or at $LATEST, not the alias "
        f"{alias}, so gates, canary steps and alias moves do not apply to their traffic (it gets new code as soon "
        "as it is uploaded; `relay rollback` puts $LATEST back too):",
        table(rows, ["function", "trigger", "source", "invokes"]),
    ])


def drift_fixes(report: StatusReport) -> list[str]:
    """One line per drifted function: what drifted in short, and the command that clears it."""
    return [f"{env.env}/{f.function}: {_fix(env, f)}" for env in report.environments for f in env.functions if f.drifted]


def _fix(env: EnvironmentStatus, f: FunctionStatus) -> str:
    release = f.artifact
    latest_only = all(d.startswith("$LATEST") for d in f.drift) and all(d.where == "$LATEST" for d in f.config_drift)
    if release and latest_only:
        return (f"`relay rollback --env {env.env} --to {release}` puts $LATEST back to the code"
                + ("" if f.manage == "code" else " and settings") + f" of the live version ({release})")
    if release and not f.drift and all(d.where == "function" for d in f.config_drift):
        return f"`relay promote {release} --to {env.env}` sets the function's tags and reserved concurrency again"
    if release and not f.drift:
        return (f"`relay promote {release} --to {env.env}` publishes a version with the settings {release} gets in "
                f"{env.env} (then `relay rollback --env {env.env} --to {release}` if $LATEST differs too)")
    return (f"`relay promote <release> --to {env.env}` deploys a release again, or `relay rollback --env {env.env}` "
            "goes back to the version before")


def _row(env: str, alias: str, f: FunctionStatus) -> list[str]:
    weights = ", ".join(f"{v}:{w:.0%}" for v, w in f.weights)
    where = f"{alias} -> {f.alias_version}" if f.alias_version else ("no alias" if f.exists else "absent")
    problems = [*f.drift, *(_config_text(d) for d in f.config_drift)]
    return [env, f.function, where, f.artifact or "-", (f.sha256 or "")[:12] or "-", weights or "-", _config(f),
            "DRIFT: " + "; ".join(problems) if problems else "ok"]


def _config(f: FunctionStatus) -> str:
    if not f.exists:
        return "-"
    if f.manage == "code":
        return "owned by IaC"
    return "relay" if f.config_checked else "relay (not compared)"


def _config_text(d: ConfigDrift) -> str:
    doc = d.to_json()
    if d.setting == "environment":
        return f"{d.where} environment differs ({', '.join(doc['variables'])})"
    if d.setting == "layers":
        return f"{d.where} layers differ"
    if d.setting == "tags":
        found, wanted = doc["found"], doc["wanted"]
        keys = sorted(k for k in set(found) | set(wanted) if found.get(k) != wanted.get(k))
        return f"function tags differ ({', '.join(f'{k}: {found.get(k)!r}, the release says {wanted.get(k)!r}' for k in keys)})"
    return f"{d.where} {d.setting} is {d.found}, the release says {d.wanted}"
