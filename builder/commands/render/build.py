"""How a build's result reads for people: the bundle table and one closing line.

Standard library only: `builder.entry` renders a no-op's answer with it before loading click.
"""

from __future__ import annotations

from builder.textfmt import human_size, table

STATUSES = ("built", "cached", "remote", "unchanged")


def build_summary(doc: dict) -> str:
    """The bundle table and one closing line, for a `BuildResult.to_json()` document."""
    bundles = doc["bundles"]
    rows = [
        [b["kind"], b["name"], b["architecture"], b["status"], human_size(b["size"]["zipped"]), b["sha256"][:12],
         check_text(b.get("import_check"))]
        for b in bundles
    ]
    lines = [table(rows, ["kind", "name", "arch", "status", "zipped", "sha256", "import check"]), ""]
    if doc["nothing_changed"]:
        lines.append(f"Nothing changed: all {len(bundles)} bundles are up to date in {doc['dist']}.")
    else:
        counts = {s: sum(1 for b in bundles if b["status"] == s) for s in STATUSES}
        remote = f", {counts['remote']} from the registry's cache" if counts["remote"] else ""
        cpu = f" ({doc['cpu_seconds']:.1f}s CPU, {doc['jobs']} at once)" if "cpu_seconds" in doc else ""
        lines.append(
            f"{counts['built']} built, {counts['cached']} from cache{remote}, {counts['unchanged']} unchanged "
            f"in {doc['seconds']:.1f}s{cpu} -> {doc['dist']}"
        )
    return "\n".join(lines)


# How a verdict not checked by this build reads (`importcheck.Source`).
_REUSED = {"cache": "verdict from the cache", "shared": "same bundle and handler as another function"}


def check_text(check: dict | None) -> str:
    if not check:
        return "-"
    status = check["status"]
    if reused := _REUSED.get(check.get("source", "")):
        status = f"{status} ({reused})"
    return status if not check.get("note") else f"{status}: {check['note']}"
