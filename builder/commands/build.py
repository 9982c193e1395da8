"""`relay build`, and how a build's result reads for people.

The no-op fast path (`builder.bundle.stamp`) reports the last build's result
without loading the build pipeline, so the rendering works on the result's
JSON document, which both paths have.
"""

from __future__ import annotations

import click

from builder.commands.options import Context, json_option
from builder.commands.output import emit_json, reporter_for
from builder.textfmt import human_size, table

STATUSES = ("built", "cached", "remote", "unchanged")


@click.command()
@click.argument("names", nargs=-1)
@click.option("--no-cache", is_flag=True, help="Rebuild even when the inputs are unchanged.")
@click.option("--no-import-check", is_flag=True, help="Skip importing each handler after the build.")
@click.option("--offline", is_flag=True, help="Use only the local wheel cache; never reach the package index.")
@click.option("--jobs", "-j", type=click.IntRange(1, 32), default=None, help="Parallel builds (default: CPU count).")
@click.option("--remote-cache/--no-remote-cache", default=None,
              help="Reuse bundles other runners built from the same inputs, via the registry "
                   "(default: registry.remote_cache in relay.toml).")
@json_option
@click.pass_obj
def build(obj: Context, names: tuple[str, ...], no_cache: bool, no_import_check: bool, offline: bool,
          jobs: int | None, remote_cache: bool | None, as_json: bool) -> None:
    """Build functions and layers into reproducible zips and manifests in dist/."""
    from builder.bundle import stamp

    project = obj.project()
    use_remote = remote_cache if remote_cache is not None else bool(project.registry and project.registry.remote_cache)
    if not no_cache:
        last = stamp.read_fresh(project, names, not no_import_check)
        if last is not None:
            _emit(stamp.unchanged(last), as_json)
            return
    inputs = stamp.input_fingerprint(project, names, not no_import_check)

    from builder.bundle.pipeline import BuildOptions, build_project

    options = BuildOptions(use_cache=not no_cache, import_check=not no_import_check, offline=offline, jobs=jobs,
                           remote_cache=_remote_cache(project, obj) if use_remote and not offline else None)
    result = build_project(project, names, options=options, reporter=reporter_for(as_json))
    doc = result.to_json()
    stamp.write(project, inputs, doc)
    _emit(doc, as_json)


def _emit(doc: dict, as_json: bool) -> None:
    if as_json:
        emit_json(doc)
    else:
        click.echo(build_summary(doc))


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
        lines.append(
            f"{counts['built']} built, {counts['cached']} from cache{remote}, {counts['unchanged']} unchanged "
            f"in {doc['seconds']:.1f}s -> {doc['dist']}"
        )
    return "\n".join(lines)


def check_text(check: dict | None) -> str:
    if not check:
        return "-"
    return check["status"] if not check.get("note") else f"{check['status']}: {check['note']}"


def _remote_cache(project, obj: Context):
    from builder.registry.cache import RemoteCache
    from builder.registry.factory import open_store

    return RemoteCache(open_store(project, sandbox=obj.sandbox()))
