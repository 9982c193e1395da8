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


def strip_host_files(target: Path) -> list[str]:
    """Remove host-specific files under `target`; return their relative paths, sorted.

    A removed folder is reported once, not file by file.
    """
    removed: list[str] = []
    for name in (SCRIPTS_DIR, *TOOL_LOCK_FILES):
        top = target / name
        if top.is_symlink() or top.exists():
            _remove(top)
            removed.append(name)
    for folder, dirs, files in os.walk(target):
        here = Path(folder)
        rel_here = here.relative_to(target)
        if "__pycache__" in dirs:
            dirs.remove("__pycache__")
            _remove(here / "__pycache__")
            removed.append(_rel(rel_here / "__pycache__"))
        is_dist_info = here.name.endswith(".dist-info")
        for name in files:
            if name.endswith(BYTECODE_SUFFIXES) or (is_dist_info and name in DIST_INFO_HOST_FILES):
                _remove(here / name)
                removed.append(_rel(rel_here / name))
    return sorted(removed)


def rewrite_records(target: Path, *, fresh: bool = False) -> None:
    """Make every `*.dist-info/RECORD` under `target` list exactly the files still shipped.

    Rows whose file is gone (or points outside `target`, like a script under
    ../../bin) are dropped; every kept row gets a fresh hash and size; RECORD's
    own row has neither; rows are sorted by path and written with "\\n".
    `fresh`: the RECORDs were just written by relay's installer, whose rows hold
    the sha256 and size of the very bytes it wrote: a row with both is kept as
    it is instead of hashing its file again (the same bytes, without reading
    every file of a layer a second time).
    """
    target = Path(os.path.abspath(target))  # normalised, so the inside-target test is lexical
    for record in sorted(target.rglob(f"*{RECORD_SUFFIX}")):
        if record.is_file() and not record.is_symlink():
            _rewrite_record(record, target, fresh)


def record_hash(path: Path) -> str:
    """A RECORD hash field: `sha256=` + urlsafe base64 of the digest, no padding."""
    with open(path, "rb") as handle:
        raw = hashlib.file_digest(handle, "sha256").digest()
    return "sha256=" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _rewrite_record(record: Path, target: Path, fresh: bool) -> None:
    site = record.parent.parent  # RECORD paths are relative to the folder holding the .dist-info
    own = f"{record.parent.name}/RECORD"
    rows: dict[str, tuple[str, str, str]] = {own: (own, "", "")}
    for path, recorded, size in _record_rows(record):
        if path == own or path in rows:
            continue
        file = _shipped_file(site, path, target)
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


def _shipped_file(site: Path, path: str, target: Path) -> str | None:
    """The file a RECORD row names, if it is still there and inside target (a regular file, not a link)."""
    if os.path.isabs(path) or "\\" in path:
        return None
    candidate = os.path.normpath(os.path.join(site, path))  # strings: this runs for every file of a layer
    if not candidate.startswith(os.path.join(target, "")):
        return None
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
