"""`relay status` as people read it: environments x functions, canary weights and drift."""

from __future__ import annotations

from builder.promote.status import FunctionStatus, StatusReport
from builder.textfmt import table


def status_summary(report: StatusReport) -> str:
    rows = []
    for env in report.environments:
        if env.error:
            rows.append([env.env, "-", "-", "-", "-", "-", f"cannot read: {env.error}"])
            continue
        rows += [_row(env.env, env.alias, f) for f in env.functions]
    lines = [table(rows, ["env", "function", "alias", "artifact", "sha256", "canary", "state"])]
    if report.registry_problem:
        lines.append(f"\n(registry out of reach: {report.registry_problem}; digests checked against the versions' "
                     "own descriptions only)")
    if report.drifted:
        lines.append("\nDRIFT: code was changed outside relay; promote a release (or roll back) to restore it.")
    return "\n".join(lines)


def _row(env: str, alias: str, f: FunctionStatus) -> list[str]:
    weights = ", ".join(f"{v}:{w:.0%}" for v, w in f.weights)
    where = f"{alias} -> {f.alias_version}" if f.alias_version else ("no alias" if f.exists else "absent")
    return [env, f.function, where, f.artifact or "-", (f.sha256 or "")[:12] or "-", weights or "-",
            "DRIFT: " + "; ".join(f.drift) if f.drift else "ok"]
