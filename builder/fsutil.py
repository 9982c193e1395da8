"""Writes that are never seen half-done: a temp file beside the target, then a rename.

Temp names are unique per call (not per process): builds write the same
content-addressed file from several threads at once. The temp file is created
with mode 0666 and the process umask applied by the kernel (0644 under the usual
022), like any file a build tool writes - not mkstemp's 0600, which another uid
(a CI container, a web server) could not read. The umask is never read or set
here: os.umask changes it for every thread.
"""

from __future__ import annotations

import os
import secrets
import shutil
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath


def atomic_copy(src: Path, dest: Path) -> None:
    staged = _staging(dest)
    try:
        shutil.copyfile(src, staged)
        os.replace(staged, dest)
    finally:
        staged.unlink(missing_ok=True)


def atomic_write_text(dest: Path, text: str) -> None:
    staged = _staging(dest)
    try:
        staged.write_text(text, encoding="utf-8")
        os.replace(staged, dest)
    finally:
        staged.unlink(missing_ok=True)


FILE_MODE = 0o666  # before the umask


def _staging(dest: Path) -> Path:
    """A new, empty file beside `dest` with a name no other call gets, mode 0666 & ~umask."""
    for _ in range(100):
        staged = dest.parent / f".{dest.name}.{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
        except FileExistsError:
            continue
        os.close(fd)
        return staged
    raise FileExistsError(f"no free temporary name beside {dest}")


def inside(folder: Path, relative: str) -> Path:
    """`folder / relative`, refused (VerificationFailed) unless it resolves inside `folder`.

    Every path built from a name read from stored state (a release document, a
    manifest, a zip entry) goes through here before anything is written there.
    """
    from builder.errors import VerificationFailed
    from builder.names import shown

    base = folder.resolve()
    target = (base / relative).resolve()
    if "\0" in relative or not target.is_relative_to(base):
        raise VerificationFailed(f"{shown(relative)} would be written outside {folder}",
                                 hint="A name in a stored document points outside its folder: check who wrote it.")
    return target


def extract_zip(archive: Path, dest: Path, *, read_only: bool = False) -> None:
    """Extract keeping each file's permission bits (zipfile drops them): bundled executables still run.

    Every member's name is checked to stay inside `dest` (`zip_member`). `read_only`: no write bits, as
    Lambda's /var/task and /opt are. A later archive's file overwrites an earlier one's, as layers do in /opt.
    """
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as zf:

        def files() -> Iterator[tuple[str, int, bytes]]:
            for info in zf.infolist():
                if info.is_dir():
                    zip_member(dest, info.filename).mkdir(parents=True, exist_ok=True)
                    continue
                mode = (info.external_attr >> 16) & 0o777 or 0o644
                yield info.filename, mode & ~0o222 if read_only else mode, zf.read(info)

        write_members(dest, files())


def write_members(dest: Path, members: Iterable[tuple[str, int, bytes]]) -> None:
    """Write each (archive path, mode, bytes) under `dest` (`zip_member` refuses a path outside it), each folder made once."""
    made: set[Path] = {dest}
    for name, mode, data in members:
        target = zip_member(dest, name)
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        write_with_mode(target, mode, data)


def write_with_mode(target: Path, mode: int, data: bytes) -> None:
    """Write `data` to `target` with exactly `mode`, over an earlier read-only copy if there is one."""
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    except PermissionError:  # an earlier layer's copy, read-only: overwritten, as in /opt
        os.chmod(target, 0o644)
        fd = os.open(target, os.O_WRONLY | os.O_TRUNC)
    os.fchmod(fd, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def zip_member(dest: Path, name: str) -> Path:
    """`dest / name` for a zip member, refused unless it stays inside `dest`.

    Read lexically (no resolve per member: an unpack makes thousands): nothing an unpack writes is a link.
    """
    parts = PurePosixPath(name).parts
    if "\0" in name or not parts or parts[0] == "/" or ".." in parts:
        from builder.errors import VerificationFailed
        from builder.names import shown

        raise VerificationFailed(f"{shown(name)} would be written outside {dest}",
                                 hint="A zip member's name points outside its folder: check who built the zip.")
    return dest.joinpath(*parts)
