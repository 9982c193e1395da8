"""`relay publish`, `relay versions`, `relay verify` and `relay keygen`: the registry's commands.

One module for the group: all four open the same registry (store, signer,
trusted keys) from the project, and each stays a few lines: parse, call one
library function, render (`builder.commands.render.registry`) or emit --json.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import click

from builder.commands.options import Context, json_option
from builder.commands.output import emit_json, reporter_for
from builder.commands.render import registry as render

BUMP_CHOICES = ("major", "minor", "patch")


@click.command()
@click.option("--version", "version", metavar="X.Y.Z", help="Publish as this semver version (e.g. 2.3.0, 2.4.0-rc.1).")
@click.option("--bump", type=click.Choice(BUMP_CHOICES),
              help="Publish as the next version after the registry's latest (nothing to do when it holds these bytes).")
@json_option
@click.pass_obj
def publish(obj: Context, version: str | None, bump: str | None, as_json: bool) -> None:
    """Publish dist/ to the registry as one signed, immutable release."""
    from builder.aws.session import RequestCounter
    from builder.registry.factory import choose_signer, open_store, trusted_keys
    from builder.registry.publish import VersionRequest
    from builder.registry.publish import publish as publish_release

    project = obj.project()
    request = VersionRequest(version=version, bump=bump)
    counter = RequestCounter()
    sandbox = obj.sandbox()
    store = open_store(project, sandbox=sandbox, counter=counter)
    key = choose_signer(project, store, sandbox=sandbox)
    obj.signing_with(key)
    result = publish_release(project, store, key.signer, request, reporter=reporter_for(as_json),
                             trusted=trusted_keys(project, sandbox))
    result = attrs.evolve(result, requests=counter.by_operation())
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo(render.publish_summary(result))


@click.command()
@click.argument("name", required=False)
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True, help="Show the newest N versions.")
@click.option("--all", "show_all", is_flag=True, help="Show every version.")
@json_option
@click.pass_obj
def versions(obj: Context, name: str | None, limit: int, show_all: bool, as_json: bool) -> None:
    """List published versions, newest first, with digests and dates (of one function or layer with NAME)."""
    from builder.registry.catalog import list_versions
    from builder.registry.factory import open_store

    project = obj.project()
    listing = list_versions(open_store(project, sandbox=obj.sandbox()), project.name, name=name,
                            limit=None if show_all else limit)
    if as_json:
        emit_json(listing.to_json())
    else:
        click.echo(render.versions_table(listing))
    for version, why in listing.unreadable:
        click.echo(f"warning: {version} skipped: its release document is unreadable ({why}); "
                   f"`relay verify {version}` says more", err=True)


@click.command()
@click.argument("version")
@click.option("--function", "function", metavar="NAME", help="Verify only this function (and the layers it needs).")
@click.option("--rebuild", is_flag=True, help="Also rebuild the release from its recorded git commit and compare digests.")
@json_option
@click.pass_obj
def verify(obj: Context, version: str, function: str | None, rebuild: bool, as_json: bool) -> None:
    """Check a release's signatures, manifests and blobs against the trusted keys."""
    from builder.registry.factory import open_store, trusted_keys
    from builder.registry.verify import ReleaseVerificationFailed, verify_release

    project = obj.project()
    sandbox = obj.sandbox()
    store = open_store(project, sandbox=sandbox)
    reporter = reporter_for(as_json)
    try:
        report = verify_release(store, project.name, version, trusted_keys(project, sandbox), function=function,
                                reporter=reporter)
    except ReleaseVerificationFailed as exc:
        if not as_json:  # show every check, then the one-line error; --json carries the report in the error
            click.echo(render.verify_summary(exc.report))
        raise
    rebuilt = None
    if rebuild:
        from builder.registry.rebuild import rebuild_release

        rebuilt = rebuild_release(project, store, version, reporter=reporter)
    if as_json:
        emit_json({**report.to_json(), "rebuild": rebuilt.to_json() if rebuilt else None})
    else:
        click.echo(render.verify_summary(report))
        if rebuilt:
            click.echo("\n" + render.rebuild_summary(rebuilt))


@click.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Private key file to write (mode 0600); the public key goes to OUT.pub.")
@click.option("--force", is_flag=True, help="Replace existing key files.")
@json_option
@click.pass_obj
def keygen(obj: Context, out: Path, force: bool, as_json: bool) -> None:
    """Create an Ed25519 signing key; print its keyid and the trusted_keys entry for relay.toml.

    The entry names the public key relative to the folder keygen runs in (the
    project's, with -C), so it is what to paste into that folder's relay.toml.
    """
    import os

    from builder.registry.signing import generate_key_file

    base = Path(os.path.abspath(obj.directory or "."))
    target = out if out.is_absolute() else base / out
    key = generate_key_file(target, force=force)
    key = attrs.evolve(key, public_key_ref=_as_relay_toml_names_it(key.public_path, base))
    if not key.gitignored:
        click.echo(f"warning: no .gitignore covers {key.private_path.name}: add `*.key` to .gitignore "
                   "so the private key is never committed", err=True)
    if as_json:
        emit_json(key.to_json())
        return
    click.echo(render.keygen_text(key))


def _as_relay_toml_names_it(path: Path, base: Path) -> str:
    """`path` relative to `base` (where relay.toml is) when inside it; else its name: copy the file beside relay.toml."""
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.name
