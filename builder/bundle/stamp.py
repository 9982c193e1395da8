"""The no-op fast path: skip a build whose inputs and outputs have not been touched since.

Like make and ninja, a build notes what it read and a later one compares
metadata (`builder.bundle.watch`). Before a build starts, `take` notes:

- its *inputs*, the files whose content is the build's: the config, every
  file a bundle ships, every file that decides a lock and the lock;
- what it *looked* at only to decide which files those are: every folder a
  selection listed (a file added or removed there changes the folder), every
  path it only asked about (`X/__init__.py`, `pyvenv.cfg`), every folder under
  one git ignores (git reports such a folder whole while nothing in it is
  kept), and what git reads to say what a manifest records (HEAD and its
  branch, the index, config and ignore files, from the work tree's top down;
  by content, since git rewrites them unchanged). What is never shipped or
  walked (`dist/`, `.git`, `.venv`, excluded folders, the docs and tests of a
  `source = "."` project) is never noted and never counts;
- what that *selected*: every bundle's files, secrets and git provenance;
- the request: relay's version, the config's path, the functions named, the
  import check, and the environment variables that move relay's or git's files
  or set the zip's timestamp.

After the build, `write` adds the files it wrote to dist/ and its result. A
later `relay build` of the same request with nothing noted touched reports
that result again: `builder.entry` answers it before loading click or the
config, and the `build` command (`read_fresh`) for command lines the entry
does not parse. When only what was looked at changed (a new git-ignored log
next to shipped files, git's index rewritten), `read_fresh` selects again and,
when the same files with the same provenance would ship, still answers and
notes afresh. When anything else changed the build runs and decides from
content hashes, so a `touch` alone still rebuilds nothing, and it writes a new
stamp.

The stamp is a cache of a local build's outcome, not a gate: a seal (a sha256
of the rest) makes a hand-edited or half-written stamp count as none, and
publishing verifies every zip against its manifest whatever the stamp says.
This module imports only the standard library; what a build reads is asked
for inside `take`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from builder import __version__
from builder.bundle import watch

if TYPE_CHECKING:
    from builder.bundle.gitinfo import GitView
    from builder.bundle.selection import Selection
    from builder.config import Project

STAMP_FILE = ".relay-build.json"
FORMAT = 2
MAX_ARGVS = 8  # command lines remembered per stamp (`relay build` and `relay build --json` both answer at once)
MAX_LOOKED = 20_000  # paths looked at (a huge git-ignored build/ folder inside a source folder): beyond, not noted
# Environment variables that can change what a build reads or decides: where relay's cache is (never shipped),
# where git's files are and which git runs, and the zip's timestamp.
_ENV_PREFIXES = ("RELAY_", "GIT_", "XDG_")
_ENV_NAMES = ("PATH", "HOME", "SOURCE_DATE_EPOCH")


def request(config_file: Path, names: tuple[str, ...] | list[str], import_check: bool) -> dict:
    """What a stamp answers for: the same request with nothing touched gets the same result."""
    env = {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES) or k in _ENV_NAMES}
    return {"format": FORMAT, "relay": __version__, "config": str(config_file), "names": sorted(names),
            "import_check": import_check, "env": hashlib.sha256(json.dumps(env, sort_keys=True).encode()).hexdigest()}


def take(project: Project, names: tuple[str, ...], import_check: bool, argv: tuple[str, ...] = (),
         git: GitView | None = None) -> dict:
    """What the coming build reads, noted before it starts (an edit during the build counts).

    `inputs`: the files whose content is the build's (config, shipped files, lock inputs). `looked`: what only
    decides which files those are (folders listed, paths asked about, git's files), None when git's files are not
    where relay looks, or when there are more than `MAX_LOOKED` (checking them would cost what selecting does).
    `selected`: what that decided (every bundle's files, secrets and git provenance). `git`: git's view, when
    the caller asked for it already (the build then uses the same one).
    """
    from builder.bundle.gitinfo import git_inputs, git_view
    from builder.lock.targets import lock_targets

    taken = time.time_ns()
    git = git if git is not None else git_view(project.root)
    inputs: list[Path] = [project.config_file]
    looked: list[Path] = []
    selected: list = [git.present, git.commit]
    for selection in shipped(project, git):
        inputs += [p.source for p in selection.files]
        looked += selection.looked_at
        looked += [Path(p) for d in _ignored_folders(project, selection) for p in watch.folders_under(str(d))]
        info = git.info_for(p.path for p in selection.files)
        selected.append([selection.kind, selection.name, [[p.path, p.archive] for p in selection.files],
                         sorted(s.path for s in selection.secrets), info.dirty if info else None])
    for target in lock_targets(project):
        inputs += [Path(p) for path in (*target.inputs, target.lock) for p in watch.tree(str(path))]
    noted = watch.take(map(str, looked), taken)
    # Past MAX_LOOKED, checking them would cost what selecting again does: the command selects again.
    from_git = None if len(noted) > MAX_LOOKED else git_inputs(project.root, git, map(Path, watch.folders(noted)))
    return {"request": request(project.config_file, names, import_check), "argv": [list(argv)] if argv else [],
            "taken": taken, "inputs": watch.take(map(str, inputs), taken),
            "looked": None if from_git is None else [*noted, *watch.take(map(str, from_git), taken, by_content=True)],
            "selected": hashlib.sha256(json.dumps(selected).encode()).hexdigest()}


def shipped(project: Project, git: GitView) -> list[Selection]:
    """What every function and layer ships, as the build selects it (no secret scan: files are not opened)."""
    from builder.bundle.selection import select_function, select_layer

    return [*(select_function(project, fn, git, scan=False) for fn in project.functions.values()),
            *(select_layer(project, layer, git, scan=False) for layer in project.layers.values())]


def _ignored_folders(project: Project, selection: Selection) -> list[Path]:
    from builder.bundle.selection import Why

    return [project.root / d.path for d in selection.dropped if d.rule.why is Why.GITIGNORED and d.path.endswith("/")]


def write(project: Project, taken: dict, result: dict) -> None:
    """Remember a build: what `take` noted before it, the files it wrote to dist/, its result."""
    from builder import dist

    outputs = watch.take([str(p) for p in dist.output_files(project.dist_dir)], time.time_ns(), racy=False)
    _save(project.dist_dir, {**taken, "outputs": outputs, "result": result})


def read_fresh(project: Project, names: tuple[str, ...], import_check: bool, argv: tuple[str, ...] = ()) -> dict | None:
    """The last build's result when it answers this request and nothing it depends on changed, else None.

    When only what it `looked` at was touched (a file created next to shipped ones, git's index rewritten), the
    selection and git's view are taken again: the same files, secrets and provenance still answer, and the stamp
    notes them afresh. A command line the stamp does not know yet is remembered, so `builder.entry` answers the
    next one without loading the rest of relay.
    """
    doc = load(project.dist_dir)
    if doc is None or doc.get("request") != request(project.config_file, names, import_check):
        return None
    if not isinstance(doc.get("result"), dict) or not _unchanged(doc, "outputs") or not _unchanged(doc, "inputs"):
        return None
    update: dict = {}
    if not _unchanged(doc, "looked"):
        again = take(project, names, import_check)
        if again["selected"] != doc.get("selected"):
            return None
        update = {"looked": again["looked"], "taken": again["taken"]}
    known: list = doc["argv"] if isinstance(doc.get("argv"), list) else []
    if argv and list(argv) not in known:
        update["argv"] = [*known, list(argv)][-MAX_ARGVS:]
    if update:
        with contextlib.suppress(OSError):  # a dist/ this user cannot write: still the answer, noted next time
            _save(project.dist_dir, {**doc, **update})
    return doc["result"]


def load(dist_dir: Path) -> dict | None:
    """The stamp in `dist_dir`, or None when there is none, or it is not whole and sealed."""
    try:
        doc = json.loads((dist_dir / STAMP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.pop("seal", None) != _seal(doc):
        return None
    return doc


def fresh(doc: dict) -> bool:
    """Whether nothing the stamp noted (inputs, what was looked at, outputs) was touched since."""
    return isinstance(doc.get("result"), dict) and all(_unchanged(doc, part) for part in ("outputs", "inputs", "looked"))


def _unchanged(doc: dict, part: str) -> bool:
    entries = doc.get(part)
    return isinstance(entries, list) and not watch.touched(entries)


def unchanged(doc: dict) -> dict:
    """The last build's document, reported again with nothing rebuilt."""
    bundles = [{**b, "status": "unchanged", "seconds": 0.0} for b in doc["bundles"]]
    return {**doc, "bundles": bundles, "nothing_changed": True, "seconds": 0.0}


def _save(dist_dir: Path, doc: dict) -> None:
    from builder.fsutil import atomic_write_text

    atomic_write_text(dist_dir / STAMP_FILE, json.dumps({**doc, "seal": _seal(doc)}, sort_keys=True))


def _seal(doc: dict) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
