"""The no-op fast path: skip a build whose inputs and outputs have not been touched since.

Like make, it compares file sizes, modification times and modes, of every
input (the config, each bundle's source folders, requirements and locks) and
of every output in dist/ (the files `builder.dist` lists), plus relay's version, SOURCE_DATE_EPOCH and git's
view of the project. When nothing was touched, the last build's result is
reported again without loading the build pipeline; when anything was, the
build runs as usual and decides from content hashes, so a `touch` alone still
rebuilds nothing. This module loads nothing of the build pipeline.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from builder import __version__, dist
from builder.bundle.gitinfo import git_info
from builder.config import Project

STAMP_FILE = ".relay-build.json"


def input_fingerprint(project: Project, names: tuple[str, ...], import_check: bool) -> str:
    """Size, mtime and mode of every input file, with what else decides a build's outcome."""
    digest = hashlib.sha256()
    git = git_info(project.root)  # what a manifest's git fields come from
    head = [__version__, os.environ.get("SOURCE_DATE_EPOCH", ""), sorted(names), import_check,
            git.to_json() if git else None]
    digest.update(json.dumps(head).encode())
    paths: list[Path] = [project.config_file]
    # A requirements file's whole folder: its lock, and files it includes with -r/-c.
    for fn in project.functions.values():
        paths += [fn.source, *([fn.requirements.parent] if fn.requirements else [])]
    for layer in project.layers.values():
        paths += [*layer.packages, *([layer.requirements.parent] if layer.requirements else [])]
    for path in paths:
        _add_tree(digest, path)
    return digest.hexdigest()


def output_fingerprint(project: Project) -> str:
    """Size, mtime and mode of the files the last build wrote to dist/ (as `builder.dist` lists them)."""
    digest = hashlib.sha256()
    for path in dist.output_files(project.dist_dir):
        _add_tree(digest, path)
    return digest.hexdigest()


def read_fresh(project: Project, names: tuple[str, ...], import_check: bool) -> dict | None:
    """The last build's result when nothing it depends on was touched since, else None."""
    try:
        stamp = json.loads((project.dist_dir / STAMP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if stamp.get("inputs") != input_fingerprint(project, names, import_check):
        return None
    if stamp.get("outputs") != output_fingerprint(project):
        return None
    return stamp.get("result")


def unchanged(doc: dict) -> dict:
    """The last build's document, reported again with nothing rebuilt."""
    bundles = [{**b, "status": "unchanged", "seconds": 0.0} for b in doc["bundles"]]
    return {**doc, "bundles": bundles, "nothing_changed": True, "seconds": 0.0}


def write(project: Project, inputs: str, result: dict) -> None:
    """Remember a build; `inputs` is the fingerprint taken before it started (edits during it count)."""
    doc = {"inputs": inputs, "outputs": output_fingerprint(project), "result": result}
    path = project.dist_dir / STAMP_FILE
    staged = path.with_name(f".{STAMP_FILE}.{os.getpid()}.tmp")
    staged.write_text(json.dumps(doc, sort_keys=True), encoding="utf-8")
    os.replace(staged, path)


def _add_tree(digest, path: Path) -> None:
    try:
        info = path.lstat()
    except OSError:
        digest.update(f"missing {path}\n".encode())
        return
    _add_stat(digest, str(path), info)
    if path.is_dir() and not path.is_symlink():
        for entry in sorted(os.scandir(path), key=lambda e: e.name):
            _add_tree(digest, Path(entry.path))


def _add_stat(digest, name: str, info: os.stat_result) -> None:
    digest.update(f"{name}\0{info.st_size}\0{info.st_mtime_ns}\0{info.st_mode}\n".encode())
