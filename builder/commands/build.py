"""`relay lock` and `relay build`."""

from __future__ import annotations

import click

from builder.commands.options import Context, json_option
from builder.commands.output import emit_json, reporter_for
from builder.errors import LockStale


@click.command()
@click.argument("names", nargs=-1)
@click.option("--check", is_flag=True, help="Fail (exit 6) when a lock is missing or stale; write nothing.")
@click.option("--resolver", type=click.Choice(["auto", "pip-tools", "uv"]), default="auto", show_default=True,
              help="auto uses uv when installed, else pip-compile.")
@click.option("--upgrade", is_flag=True, help="Allow newer versions than the current lock pins.")
@json_option
@click.pass_obj
def lock(obj: Context, names: tuple[str, ...], check: bool, resolver: str, upgrade: bool, as_json: bool) -> None:
    """Resolve each function's and layer's requirements .in into a hashed lock for the Lambda target."""
    from builder.bundle.lock import lock_project

    result = lock_project(obj.project(), names, check=check, resolver=resolver, upgrade=upgrade,
                          reporter=reporter_for(as_json))
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo(result.summary())
    try:
        result.raise_for_check()
    except LockStale as exc:
        exc.reported = as_json  # the result document above already says which locks
        raise


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
            from builder.bundle import report

            doc = report.unchanged(last)
            if as_json:
                emit_json(doc)
            else:
                click.echo(report.summary(doc))
            return
    inputs = stamp.input_fingerprint(project, names, not no_import_check)

    from builder.bundle.pipeline import BuildOptions, build_project

    options = BuildOptions(use_cache=not no_cache, import_check=not no_import_check, offline=offline, jobs=jobs,
                           remote_cache=_remote_cache(project) if use_remote and not offline else None)
    result = build_project(project, names, options=options, reporter=reporter_for(as_json))
    stamp.write(project, inputs, result.to_json())
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo(result.summary())


def _remote_cache(project):
    from builder.registry.cache import RemoteCache
    from builder.registry.factory import open_store

    return RemoteCache(open_store(project))
