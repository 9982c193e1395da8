"""The registry's results as people read them: publish, versions, verify (and --rebuild), keygen.

The records stay data in `builder.registry`; these functions only turn them
into text, which the commands print.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from builder.commands.render.text import table
from builder.textfmt import human_size

if TYPE_CHECKING:  # the commands import the registry modules when run: `relay keygen` needs no boto3
    from builder.registry.catalog import VersionsListing
    from builder.registry.publish import PublishResult
    from builder.registry.rebuild import RebuildReport
    from builder.registry.signing import GeneratedKey
    from builder.registry.verify import VerifyReport


def publish_summary(result: PublishResult) -> str:
    if result.status == "unchanged":
        return f"{result.app}@{result.version}: {result.note or 'already published with the same bytes'}; nothing to do."
    uploaded = result.uploaded
    sent = sum(b.size for b in uploaded)
    functions = sum(b.kind == "function" for b in result.bundles)
    layers = sum(b.kind == "layer" for b in result.bundles)
    return (
        f"Published {result.app}@{result.version}: {functions} function(s), {layers} layer bundle(s); "
        f"{len(uploaded)} blob(s) uploaded ({human_size(sent)}), {len(result.bundles) - len(uploaded)} already in the registry."
        + (f"\n{result.note}" if result.note else "")
    )


def versions_table(listing: VersionsListing) -> str:
    if not listing.rows:
        what = f"{listing.app} ({listing.name})" if listing.name else listing.app
        return f"No published versions of {what}."
    headers = ["version", "published (UTC)", "bundle", "sha256"] + (["changed"] if listing.name else [])
    lines = []
    for row in listing.rows:
        published = row.published.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        for index, (bundle, sha) in enumerate(sorted(row.digests.items())):
            first = index == 0
            line = [row.version if first else "", published if first else "", bundle, sha[:16]]
            if listing.name:
                line.append(_changed(row.changed) if first else "")
            lines.append(line)
    more = "\n(more versions exist: --all lists every one)" if listing.truncated else ""
    return table(lines, headers) + more


def _changed(changed: bool | None) -> str:
    if changed is None:
        return "-"  # the oldest version shown has nothing older to compare with
    return "yes" if changed else "no"


def verify_summary(report: VerifyReport) -> str:
    """Every check (which key verified what is in each signature check's detail), then the verdict."""
    rows = [["ok" if c.ok else "FAIL", c.subject, c.what, c.detail] for c in report.checks]
    if report.ok:
        verdict = f"{report.app}@{report.version}: verified ({len(report.checks)} checks passed)"
    else:
        verdict = f"{report.app}@{report.version}: {len(report.failures)} of {len(report.checks)} checks FAILED"
    return table(rows, ["", "subject", "check", "detail"]) + "\n\n" + verdict


def rebuild_summary(report: RebuildReport) -> str:
    rows = [["ok" if b.ok else "DIFFERS", b.bundle, b.published[:16], (b.rebuilt or "not built")[:16]]
            for b in report.bundles]
    origin = f"{report.app}@{report.version} rebuilt from {report.commit[:12]}"
    verdict = f"{origin}: every bundle is byte-for-byte identical" if report.ok else f"{origin}: bundles DIFFER"
    return table(rows, ["", "bundle", "published", "rebuilt"]) + "\n\n" + verdict + (f"\n{report.note}" if report.note else "")


def keygen_text(key: GeneratedKey) -> str:
    return (
        f"Private key: {key.private_path} (keep it secret; in CI pass it as RELAY_SIGNING_KEY)\n"
        f"Public key:  {key.public_path}\n"
        f"keyid:       {key.keyid}\n"
        "\nAdd to relay.toml (public_key may also be the PEM text itself):\n\n"
        f"{key.toml_snippet()}"
    )
