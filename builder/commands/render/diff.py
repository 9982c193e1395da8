"""`relay diff V1 V2` as people read it: a row per bundle, then each bundle's locked package changes."""

from __future__ import annotations

from builder.registry.diff import ADDED, CHANGED, REMOVED, BundleDiff, PackageChange, ReleaseDiff
from builder.textfmt import table


def diff_summary(diff: ReleaseDiff) -> str:
    head = f"{diff.app} {diff.from_version} -> {diff.to_version}"
    if not diff.differences:
        return f"{head}: the same bytes (no function or layer changed).\n{diff.checked}".rstrip()
    rows = [_row(b) for b in diff.bundles]
    lines = [head, "", table(rows, ["kind", "bundle", "status", "sha256", "note"])]
    for b in diff.bundles:
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


def _row(b: BundleDiff) -> list[str]:
    digest = f"{_short(b.from_sha256)} -> {_short(b.to_sha256)}" if b.status == CHANGED else _short(b.to_sha256 or b.from_sha256)
    note = "needs other layer bytes" if b.layers_changed else ""
    return [b.kind, b.bundle, b.status, digest, note]


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "-"
