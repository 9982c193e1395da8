"""`relay verify --rebuild VERSION`: the reproducibility proof anyone can run.

Takes the git commit the release records, exports that commit's tree with
`git archive` into a temporary folder (read-only for the repository: no
worktree, no checkout), builds the project there without the build cache,
and compares every bundle's sha256 with the release's.
"""

from __future__ import annotations

import json
import os
import tarfile
import tempfile
from pathlib import Path

import attrs

from builder.bundle.subproc import run
from builder.config import Project, load_project
from builder.errors import NotFound, UsageError, VerificationFailed
from builder.frozen import to_tuple
from builder.fsutil import inside
from builder.progress import Reporter, SilentReporter
from builder.registry.catalog import Catalog
from builder.registry.store import Store


@attrs.frozen
class RebuiltBundle:
    bundle: str
    published: str
    rebuilt: str | None

    @property
    def ok(self) -> bool:
        return self.published == self.rebuilt

    def to_json(self) -> dict:
        return {"bundle": self.bundle, "published": self.published, "rebuilt": self.rebuilt, "ok": self.ok}


@attrs.frozen
class RebuildReport:
    app: str
    version: str
    commit: str
    bundles: tuple[RebuiltBundle, ...] = attrs.field(converter=to_tuple)
    note: str = ""

    @property
    def ok(self) -> bool:
        return all(b.ok for b in self.bundles)

    def to_json(self) -> dict:
        return {"app": self.app, "version": self.version, "commit": self.commit, "ok": self.ok, "note": self.note,
                "bundles": [b.to_json() for b in self.bundles]}


def rebuild_release(project: Project, store: Store, version: str, *, reporter: Reporter | None = None) -> RebuildReport:
    """Rebuild `version` from its recorded commit and compare digests; VerificationFailed when any differs."""
    from builder.bundle.pipeline import BuildOptions, build_project

    reporter = reporter or SilentReporter()
    entry = Catalog(store, project.name).read(version)
    if entry is None:
        raise NotFound(f"{project.name}@{version} is not published")
    release = entry.release
    if release.git is None:
        raise UsageError(f"{project.name}@{version} records no git commit (it was built outside a git work tree)",
                         hint="Only releases built from a git checkout can be rebuilt.")
    note = "the release was built from a tree with uncommitted changes: a rebuild from the commit may differ" \
        if release.git.dirty else ""
    with tempfile.TemporaryDirectory(prefix="relay-rebuild-") as tmp:
        config = _export(project, release.git.commit, Path(tmp))
        reporter.step(f"rebuilding {project.name}@{version} from {release.git.commit[:12]} in {tmp}")
        rebuilt_project = load_project(config)
        # The commit's relay.toml chooses dist/: the rebuild writes inside its temporary folder only.
        inside(Path(tmp), os.path.relpath(rebuilt_project.dist_dir, tmp))
        options = BuildOptions(use_cache=False, import_check=False, epoch=_recorded_epoch(store, release))
        result = build_project(rebuilt_project, (), options=options, reporter=reporter)
    built = {b.manifest.bundle_name: b.manifest.sha256 for b in result.bundles}
    published = {**{lay.bundle: lay.sha256 for lay in release.layers}, **{f.name: f.sha256 for f in release.functions}}
    report = RebuildReport(project.name, version, release.git.commit,
                           [RebuiltBundle(name, sha, built.get(name)) for name, sha in sorted(published.items())], note)
    if not report.ok:
        differing = ", ".join(b.bundle for b in report.bundles if not b.ok)
        raise VerificationFailed(f"{project.name}@{version}: the rebuild from {release.git.commit[:12]} differs for "
                                 f"{differing}", hint="The build is not reproducible for these bundles: compare the "
                                 "manifests' inputs (lock, source, relay and zlib versions, SOURCE_DATE_EPOCH).")
    return report


def _recorded_epoch(store: Store, release) -> int | None:
    """The zip timestamp the release was built with (SOURCE_DATE_EPOCH), from one of its manifests."""
    entries = [*release.functions, *release.layers]
    if not entries:
        return None
    doc = json.loads(store.read(store.layout.key(entries[0].manifest)).body)
    return doc.get("builder", {}).get("source_date_epoch")


def _export(project: Project, commit: str, into: Path) -> Path:
    """The commit's tree under `into`; returns the project's config file inside it."""
    top = run(["git", "-C", project.root, "rev-parse", "--show-toplevel"], step="rebuild",
              hint="relay verify --rebuild needs the project's git repository.").stdout.strip()
    found = run(["git", "-C", top, "cat-file", "-e", f"{commit}^{{commit}}"], step="rebuild", check=False)
    if not found.ok:
        raise NotFound(f"commit {commit[:12]} is not in the repository at {top}", hint="git fetch it first.")
    archive = into / "tree.tar"
    run(["git", "-C", top, "archive", "--format=tar", "-o", archive, commit], step="rebuild")
    tree = into / "tree"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    archive.unlink()
    relative = Path(os.path.relpath(project.config_file.resolve(), Path(top).resolve()))
    config = tree / relative
    if not config.is_file():
        raise NotFound(f"{relative} does not exist at commit {commit[:12]}")
    return config
