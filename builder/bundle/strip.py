"""Remove what `pip install --target` leaves behind that varies by host.

Bytecode caches, console scripts (their shebang names the build host's
interpreter), installer marker files and tool lock files differ between two
machines installing the same wheels. Removing them, then rewriting each
`RECORD` to list exactly the files shipped, leaves only what the wheels hold.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path

from builder.errors import BuildFailed

STEP = "strip"
# Written by the installer about this install, not part of the package.
DIST_INFO_HOST_FILES = ("INSTALLER", "REQUESTED", "direct_url.json")
BYTECODE_SUFFIXES = (".pyc", ".pyo")
# Lock files some installers (e.g. uv) leave at the top of a --target folder.
TOOL_LOCK_FILES = (".lock",)
SCRIPTS_DIR = "bin"
# Every RECORD, which `rewrite_records` rewrites after the installer wrote it.
RECORD_SUFFIX = ".dist-info/RECORD"


def strip_installed(target: Path, files: Iterable[str]) -> set[str]:
    """Remove the host-specific files among `files` (every file under `target`, absolute paths, as relay's
    installer wrote them: nothing is walked) and the folders that leaves empty; return the files kept."""
    root = os.path.join(target, "")
    kept: set[str] = set()
    emptied: set[str] = set()  # folders that lost a file
    for path in sorted(files):
        parts = path[len(root):].split(os.sep) if path.startswith(root) else []
        if not parts:
            continue
        top = os.path.join(target, parts[0])
        if parts[0] in (SCRIPTS_DIR, *TOOL_LOCK_FILES):
            if os.path.lexists(top):
                _remove(Path(top))
            continue
        if "__pycache__" in parts[:-1]:
            cache = os.path.join(target, *parts[: parts.index("__pycache__") + 1])
            if os.path.lexists(cache):
                _remove(Path(cache))
                emptied.add(os.path.dirname(cache))
            continue
        name = parts[-1]
        if name.endswith(BYTECODE_SUFFIXES) or (len(parts) > 1 and parts[-2].endswith(".dist-info")
                                                and name in DIST_INFO_HOST_FILES):
            os.unlink(path)
            emptied.add(os.path.dirname(path))
            continue
        kept.add(path)
    # A folder left empty could import as a namespace package, and a zip has no folder entries to make it.
    for folder in sorted(emptied, key=len, reverse=True):
        while folder.startswith(root):
            try:
                os.rmdir(folder)
            except OSError:  # not empty (or gone): its parents keep a file too
                break
            folder = os.path.dirname(folder)
    return kept


def rewrite_records(target: Path, *, fresh: bool = False, files: set[str] | None = None) -> None:
    """Make every `*.dist-info/RECORD` under `target` list exactly the files still shipped.

    Rows whose file is gone (or points outside `target`, like a script under
    ../../bin) are dropped; every kept row gets a fresh hash and size; RECORD's
    own row has neither; rows are sorted by path and written with "\\n".
    `fresh`: the RECORDs were just written by relay's installer, whose rows hold
    the sha256 and size of the very bytes it wrote: a row with both is kept as
    it is instead of hashing its file again (the same bytes, without reading
    every file of a layer a second time). `files`: every file under `target` (absolute paths), when the
    caller knows them: nothing is walked or stat'ed.
    """
    target = Path(os.path.abspath(target))  # normalised, so the inside-target test is lexical
    if files is not None:
        records = sorted(Path(path) for path in files if path.endswith(RECORD_SUFFIX))
    else:
        records = [r for r in sorted(target.rglob(f"*{RECORD_SUFFIX}")) if r.is_file() and not r.is_symlink()]
    for record in records:
        _rewrite_record(record, target, fresh, files)


def record_hash(path: Path) -> str:
    """A RECORD hash field: `sha256=` + urlsafe base64 of the digest, no padding."""
    with open(path, "rb") as handle:
        raw = hashlib.file_digest(handle, "sha256").digest()
    return "sha256=" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _rewrite_record(record: Path, target: Path, fresh: bool, files: set[str] | None) -> None:
    site = record.parent.parent  # RECORD paths are relative to the folder holding the .dist-info
    own = f"{record.parent.name}/RECORD"
    rows: dict[str, tuple[str, str, str]] = {own: (own, "", "")}
    for path, recorded, size in _record_rows(record):
        if path == own or path in rows:
            continue
        file = _shipped_file(site, path, target, files)
        if file is None:
            continue
        if fresh and recorded.startswith("sha256=") and size.isdigit():
            rows[path] = (path, recorded, size)
        else:
            rows[path] = (path, record_hash(Path(file)), str(os.stat(file).st_size))
    buffer = io.StringIO()
    # pip's csv dialect (excel: minimal quoting), with "\n" so the bytes do not depend on the writer's platform.
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(rows[path] for path in sorted(rows, key=lambda p: p.encode("utf-8", "surrogateescape")))
    _replace_text(record, buffer.getvalue())


def _record_rows(record: Path) -> list[tuple[str, str, str]]:
    """(path, hash, size) of each row; a missing field is ""."""
    try:
        text = record.read_text(encoding="utf-8")
        rows = [[*row, "", ""] for row in csv.reader(io.StringIO(text, newline="")) if row and row[0]]
        return [(row[0], row[1], row[2]) for row in rows]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise BuildFailed(
            STEP,
            f"cannot read {record}: {exc}",
            hint="The installed wheel has a broken RECORD; rebuild or replace that wheel.",
        ) from exc


def _shipped_file(site: Path, path: str, target: Path, files: set[str] | None) -> str | None:
    """The file a RECORD row names, if it is still there and inside target (a regular file, not a link)."""
    if os.path.isabs(path) or "\\" in path:
        return None
    candidate = os.path.normpath(os.path.join(site, path))  # strings: this runs for every file of a layer
    if not candidate.startswith(os.path.join(target, "")):
        return None
    if files is not None:
        return candidate if candidate in files else None
    try:
        if not stat.S_ISREG(os.lstat(candidate).st_mode):
            return None
    except OSError:
        return None
    return candidate


def _replace_text(path: Path, text: str) -> None:
    """Replace `path` with `text`, keeping its mode (an installed file may be read-only)."""
    staged = path.with_name(f".{path.name}.tmp")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IMODE(path.stat().st_mode))
    with os.fdopen(fd, "wb") as out:
        out.write(text.encode("utf-8"))
    os.replace(staged, path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _rel(path: Path) -> str:
    return path.as_posix()
