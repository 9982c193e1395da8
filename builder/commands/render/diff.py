"""`relay diff V1 V2` as people read it: a row per bundle, then each bundle's settings and locked package changes."""

from __future__ import annotations

from builder.commands.render.text import table
from builder.registry.diff import ADDED, CHANGED, REMOVED, BundleDiff, PackageChange, ReleaseDiff, SettingChange


def diff_summary(diff: ReleaseDiff) -> str:
    head = f"{diff.app} {diff.from_version} -> {diff.to_version}"
    if not diff.differences:
        return f"{head}: the same bytes (no function or layer changed).\n{diff.checked}".rstrip()
    rows = [_row(b) for b in diff.bundles]
    lines = [head, "", table(rows, ["kind", "bundle", "status", "sha256", "note"])]
    for b in diff.bundles:
        if b.settings:
            lines += ["", f"{b.bundle}: settings"] + [f"  {setting_change(c)}" for c in b.settings]
        if b.packages:
            lines += ["", f"{b.bundle}: locked packages"] + [f"  {package_change(p)}" for p in b.packages]
    if diff.checked:
        lines += ["", diff.checked]
    return "\n".join(lines)


def package_change(change: PackageChange) -> str:
    """`+ idna 3.10`, `- six 1.16.0`, `~ pydantic 2.9.2 -> 2.10.1 (upgraded)`."""
    if change.change == ADDED:
        return f"+ {change.name} {change.to_version}"
    if change.change == REMOVED:
        return f"- {change.name} {change.from_version}"
    return f"~ {change.name} {change.from_version} -> {change.to_version} ({change.change})"


def setting_change(change: SettingChange) -> str:
    """`~ memory 256 -> 1024`, `+ environment.TABLE_NAME shop-{env}`, `- tracing Active`."""
    if change.from_value is None:
        return f"+ {change.key} {_value(change.to_value)}"
    if change.to_value is None:
        return f"- {change.key} {_value(change.from_value)}"
    return f"~ {change.key} {_value(change.from_value)} -> {_value(change.to_value)}"


def _value(value: object) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _row(b: BundleDiff) -> list[str]:
    digest = f"{_short(b.from_sha256)} -> {_short(b.to_sha256)}" if b.status == CHANGED else _short(b.to_sha256 or b.from_sha256)
    notes = ["needs other layer bytes"] if b.layers_changed else []
    if b.settings:
        notes.append(f"{len(b.settings)} setting(s) changed")
    elif b.settings_unknown and b.kind == "function" and b.status != "removed":
        notes.append("settings not recorded in both releases")
    return [b.kind, b.bundle, b.status, digest, "; ".join(notes)]


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "-"
