"""`relay build`, and how a build's result reads for people.

The no-op fast path (`builder.bundle.stamp`) reports the last build's result
without loading the build pipeline (or, from `builder.entry`, click), so the
rendering (`builder.commands.render.build`) works on the result's JSON
document, which both paths have. `relay build --explain NAME` builds
nothing: it shows a bundle's selection (`builder.bundle.selection`).
"""

from __future__ import annotations

import click

from builder.commands.options import Context, json_option
from builder.commands.output import emit_json, reporter_for
from builder.commands.render.build import build_summary
from builder.textfmt import table


@click.command()
@click.argument("names", nargs=-1)
@click.option("--no-cache", is_flag=True, help="Rebuild even when the inputs are unchanged.")
@click.option("--no-import-check", is_flag=True, help="Skip importing each handler after the build.")
@click.option("--offline", is_flag=True, help="Use only the local wheel cache; never reach the package index.")
@click.option("--jobs", "-j", type=click.IntRange(1, 32), default=None,
              help="Bundles built, zipped and checked at once (default: the cores relay may use).")
@click.option("--remote-cache/--no-remote-cache", default=None,
              help="Reuse bundles other runners built from the same inputs, via the registry "
                   "(default: registry.remote_cache in relay.toml).")
@click.option("--explain", metavar="NAME", default=None,
              help="List what the bundle of function or layer NAME would ship and which rule kept or dropped each "
                   "path; builds nothing, needs no network.")
@json_option
@click.pass_obj
def build(obj: Context, names: tuple[str, ...], no_cache: bool, no_import_check: bool, offline: bool,
          jobs: int | None, remote_cache: bool | None, explain: str | None, as_json: bool) -> None:
    """Build functions and layers into reproducible zips and manifests in dist/."""
    project = obj.project()
    if explain is not None:
        doc = _selection(project, explain)
        if as_json:
            emit_json(doc)
        else:
            click.echo(explain_text(doc))
        return

    from builder.bundle import stamp

    use_remote = remote_cache if remote_cache is not None else bool(project.registry and project.registry.remote_cache)
    if not no_cache:
        last = stamp.read_fresh(project, names, not no_import_check, obj.argv)
        if last is not None:
            _emit(stamp.unchanged(last), as_json)
            return
    from builder.bundle.gitinfo import git_view
    from builder.bundle.pipeline import BuildOptions, build_project

    git = git_view(project.root)  # once: what the stamp notes is what the build's manifests say
    taken = stamp.take(project, names, not no_import_check, obj.argv, git=git)

    options = BuildOptions(use_cache=not no_cache, import_check=not no_import_check, offline=offline, jobs=jobs,
                           remote_cache=_remote_cache(project, obj) if use_remote and not offline else None)
    result = build_project(project, names, options=options, reporter=reporter_for(as_json), git=git)
    doc = result.to_json()
    stamp.write(project, taken, doc)
    _emit(doc, as_json)


def _selection(project, name: str) -> dict:
    """The selection of function `name` (or, failing that, layer `name`) as its JSON document."""
    from builder.bundle.gitinfo import git_view
    from builder.bundle.targets import select_targets

    layers, functions = select_targets(project, (name,))
    target = next(t for t in [*functions, *layers] if t.name == name)
    return target.selection(project, git_view(project.root)).to_json()


def explain_text(doc: dict) -> str:
    """What one bundle ships and leaves out, with the rule for each, for a `Selection.to_json()` document."""
    where = f"packages {', '.join(doc['packages'])}" if doc["packages"] else f"source {doc['root']}"
    lines = [f"{doc['kind']} {doc['name']}: {where} (git: {doc['git']})", ""]
    files = doc["files"]
    lines.append(f"ships {len(files)} file(s) from the project (besides its installed requirements):")
    if files:
        lines.append(table([[f["archive"], f["path"], _rule(f)] for f in files], ["in the zip", "from", "kept by"]))
    dropped = doc["dropped"]
    lines += ["", f"leaves out {len(dropped)} path(s) (a folder stands for everything in it):"]
    if dropped:
        lines.append(table([[d["path"], _rule(d)] for d in dropped], ["path", "dropped by"]))
    secrets = doc["secrets"]
    if secrets:
        lines += ["", f"refuses {len(secrets)} file(s) that look like secrets (relay build stops on them):"]
        lines.append(table([[s["project_path"], s["reason"], f'{s["allow_with"]} = ["{s["path"]}"]'] for s in secrets],
                           ["path", "why", "to ship it anyway"]))
    return "\n".join(lines)


def _rule(item: dict) -> str:
    return f"{item['rule']}: {item['detail']}" if item["detail"] else item["rule"]


def _emit(doc: dict, as_json: bool) -> None:
    if as_json:
        emit_json(doc)
    else:
        click.echo(build_summary(doc))


def _remote_cache(project, obj: Context):
    from builder.registry.cache import RemoteCache
    from builder.registry.factory import open_store

    return RemoteCache(open_store(project, sandbox=obj.sandbox()))
