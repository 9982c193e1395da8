"""How a build's result reads for people, from its JSON form.

Shared by the build and by `relay build`'s no-op fast path, which reports the
last result without loading the build.
"""

from __future__ import annotations

from builder.textfmt import human_size, table

STATUSES = ("built", "cached", "remote", "unchanged")


def summary(doc: dict) -> str:
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
        lines.append(
            f"{counts['built']} built, {counts['cached']} from cache{remote}, {counts['unchanged']} unchanged "
            f"in {doc['seconds']:.1f}s -> {doc['dist']}"
        )
    return "\n".join(lines)


def check_text(check: dict | None) -> str:
    if not check:
        return "-"
    return check["status"] if not check.get("note") else f"{check['status']}: {check['note']}"


def unchanged(doc: dict) -> dict:
    """The last build's document, reported again with nothing rebuilt."""
    bundles = [{**b, "status": "unchanged", "seconds": 0.0} for b in doc["bundles"]]
    return {**doc, "bundles": bundles, "nothing_changed": True, "seconds": 0.0}
