"""A promotion plan and `relay promote`'s result as people read them.

The plan stays typed instructions in `builder.promote.instructions`; these
functions only turn it into text. `plan_summary` serves every command that
shows a plan (promote, rollback).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from builder.commands.render.text import table
from builder.promote.instructions import CreateFunction, PublishLayer, ReuseLayer, UpdateCode, UpdateConfiguration

if TYPE_CHECKING:
    from builder.promote.instructions import FunctionPlan, Plan
    from builder.promote.promoter import PromoteResult


def plan_summary(plan: Plan, *, width: int | None = None) -> str:
    what = f"{plan.event} {plan.app} {plan.from_version or '-'} -> {plan.to_version or '-'}"
    head = f"Plan: {what} in {plan.env} (account {plan.account}, {plan.region}, alias {plan.alias})"
    rows = [[f.function, f.action, f"{f.from_version or '-'} -> {f.target_version or ('new' if f.publishes else '-')}",
             f.artifact or "-", (f.sha256 or "")[:12], _work(f)] for f in plan.functions]
    lines = [head, "", table(rows, ["function", "action", "alias", "artifact", "sha256", "work"], width=width)]
    if plan.layers:
        layer_rows = [[layer.bundle, layer.layer_name, _layer_work(layer), layer.sha256[:12]] for layer in plan.layers]
        lines += ["", table(layer_rows, ["layer", "in AWS", "action", "sha256"], width=width)]
    if plan.event == "promote" and any(f.settings is not None for f in plan.functions):
        lines += ["", *settings_lines(plan, width=width)]
    if plan.canary and plan.moving:
        steps = " -> ".join(f"{s}%" for s in plan.canary.steps)
        lines += ["", f"Canary: {steps}, {plan.canary.interval}s per step, watching {', '.join(plan.alarms) or 'no alarms'}"]
    if plan.is_noop:
        lines += ["", "Nothing to do: every alias already serves this release."]
    return "\n".join(lines)


def settings_lines(plan: Plan, *, width: int | None = None) -> list[str]:
    """What each function ends up with in the environment; `*` marks a value the environment set."""
    rows = []
    for f in plan.functions:
        if f.settings is None:
            continue
        if f.settings_from == "$LATEST":
            rows.append([f.function, "its own (manage = code)", "", "", "", "", ""])
            continue
        own = f.settings_overridden
        mine = own.get("environment", {})
        variables = ", ".join(f"{k}={v}{'*' if k in mine else ''}" for k, v in f.settings.environment) or "-"
        rows.append([f.function, *(_marked(own, name, getattr(f.settings, name))
                                   for name in ("memory", "timeout", "ephemeral_storage", "tracing")),
                     str(len(f.settings.layers)), variables])
    lines = [f"Settings in {plan.env} (the release's; * = set by {plan.env}):",
             table(rows, ["function", "memory", "timeout", "/tmp MB", "tracing", "layers", "environment"], width=width)]
    level = [f"  {f.function}: " + "; ".join(_function_level_text(f)) for f in plan.functions
             if f.settings is not None and f.settings_from != "$LATEST" and _function_level_text(f)]
    if level:
        lines += [f"Function-level in {plan.env} (not part of a version; * = set by {plan.env}):", *level]
    older = [f.function for f in plan.functions if f.settings_from == "relay.toml"]
    if older:
        lines.append(f"Note: {plan.app}@{plan.to_version} records no settings (published before relay recorded them): "
                     f"{', '.join(older)} take relay.toml's, as this checkout has them.")
    return lines


def _function_level_text(f: FunctionPlan) -> list[str]:
    assert f.settings is not None
    own = f.settings_overridden
    parts = []
    if f.settings.tags:
        mine = own.get("tags", {})
        parts.append("tags " + ", ".join(f"{k}={v}{'*' if k in mine else ''}" for k, v in f.settings.tags))
    if f.settings.reserved_concurrency is not None:
        parts.append(f"reserved concurrency {_marked(own, 'reserved_concurrency', f.settings.reserved_concurrency)}")
    return parts


def _marked(overridden: dict, name: str, value: object) -> str:
    return f"{value}*" if name in overridden else str(value)


def promote_summary(result: PromoteResult, *, width: int | None = None, plan_shown: bool = False) -> str:
    """The plan (unless it was shown before it was applied), the gates, and what happened."""
    from builder.promote.gates import refusal_message

    plan = result.plan
    lines = [] if plan_shown else [plan_summary(plan, width=width)]
    if result.gates:
        lines += ["", gates_table(result, width=width)]
    if result.status == "planned":
        verdict = "\nDry run: nothing was changed."
        if result.would_refuse:
            verdict += f" {refusal_message(result.gates)}"
        lines.append(verdict)
    elif result.status == "unchanged":
        lines.append(f"\n{plan.app}@{plan.to_version} already live in {plan.env}; nothing to do.")
    else:
        moved = ", ".join(f"{f}:{v}" for f, v in sorted(result.versions.items()))
        seq = f" (ledger seq {result.record.seq})" if result.record else ""
        lines.append(f"\nPromoted {plan.app}@{plan.to_version} to {plan.env}{seq}: {moved}"
                     + (" [FORCED]" if result.forced else ""))
    return "\n".join(lines).lstrip("\n")


def gates_table(result: PromoteResult, *, width: int | None = None) -> str:
    rows = [["ok" if g.ok else ("FORCED" if result.forced else "FAIL"), g.name, g.detail] for g in result.gates]
    return table(rows, ["", "gate", "detail"], width=width)


def _work(f: FunctionPlan) -> str:
    """The function's instructions, in words."""
    level = _function_level_work(f)
    if f.alias is None:
        return "; ".join(part for part in (level, f.note) if part) or "-"
    parts = []
    for step in f.steps:
        if isinstance(step, CreateFunction):
            parts.append("create function")
        elif isinstance(step, UpdateConfiguration):
            parts.append("set " + ",".join(step.changes))
        elif isinstance(step, UpdateCode):
            parts.append("update code")
    if f.publishes:
        parts.append("publish version")
    if level:
        parts.append(level)
    parts.append("move alias" if f.alias.alias_exists else "create alias")
    return "; ".join(parts) + (f" ({f.note})" if f.note else "")


def _function_level_work(f: FunctionPlan) -> str:
    step = f.function_level
    if step is None:
        return ""
    words = {"tags": "set tags", "reserved_concurrency": "set reserved concurrency"}
    return "; ".join(words[name] for name in step.changes)


def _layer_work(layer: PublishLayer | ReuseLayer) -> str:
    if isinstance(layer, ReuseLayer):
        return f"reuse {layer.arn.rsplit(':', 1)[-1]}"
    return "publish"
