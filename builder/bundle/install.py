"""Unpacking locked wheels into a bundle's folder: in-process with `installer`, files written on threads.

Each wheel's sha256 is checked against the lock again (the same hash enforcement
as `pip install --require-hashes`, without a pip process per bundle), then
`installer` (pypa's wheel installer) lays it out the way `pip install --target`
does. Creating a file costs more than decompressing it on a layer of small
files (~0.4 ms each here, ~1 ms on some CI machines), and those system calls
release the GIL: one thread reads and decompresses each member while a few
others create the files and their folders.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import stat
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from builder.bundle.cores import available_cores
from builder.bundle.digest import sha256_file
from builder.errors import BuildFailed
from builder.lock.lockfile import LockedRequirement

if TYPE_CHECKING:
    from installer.destinations import WheelDestination

# Threads creating files: the work is system calls, so a few more than the cores still help.
_WRITERS = 4


def install(wheels: list[tuple[LockedRequirement, Path]], target: Path) -> dict[str, str]:
    """Unpack each wheel into `target` the way `pip install --target` lays it out, hashes re-checked.

    Files are created read-only (0444, scripts 0555, less the umask): zipped, they become the import
    check's tree as they are. Returns the hex sha256 of every file written, by its path (the RECORD
    rows are made from the same digests), so nothing needs to read them back to hash them.
    """
    from installer import install as install_wheel  # imported here: a no-op build installs nothing
    from installer.sources import WheelFile

    target.mkdir(parents=True, exist_ok=True)
    with _Writer(target) as writer:
        for req, wheel in wheels:
            digest = sha256_file(wheel)
            if f"sha256:{digest}" not in req.hashes:
                raise BuildFailed(
                    "install",
                    f"hash mismatch for {req.name}=={req.version}: cached {wheel.name} has sha256 {digest}, "
                    "which the lock does not pin",
                    hint="The wheel cache was changed on disk: delete it (see RELAY_CACHE_DIR) and rebuild.",
                )
            destination = writer.destination(
                {
                    "purelib": str(target),
                    "platlib": str(target),
                    "headers": str(target / "include" / req.name),
                    "scripts": str(target / "bin"),
                    "data": str(target),
                },
            )
            try:
                with WheelFile.open(wheel) as source:
                    install_wheel(source=source, destination=destination, additional_metadata={})
            except FileExistsError as exc:
                raise _two_ship(exc) from None
            except BuildFailed:
                raise
            except Exception as exc:  # installer raises plain exceptions for invalid wheels
                raise BuildFailed("install", f"{wheel.name}: {exc}") from exc
            writer.check()
    return writer.written


def _two_ship(exc: FileExistsError) -> BuildFailed:
    return BuildFailed("install", f"two locked packages ship the same file: {exc.filename}")


class _Writer:
    """Files written on a few threads, each folder made once; the first failure is raised by `check`/exit."""

    def __init__(self, target: Path) -> None:
        self._made: set[str] = {str(target)}
        self._guard = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=min(_WRITERS, 2 * available_cores()), thread_name_prefix="relay-install")
        self._pending: list[Future[None]] = []
        self.written: dict[str, str] = {}  # path -> hex sha256 of what was written there

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.check()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def check(self) -> None:
        """Wait for every file queued so far; raise the first failure (a file two wheels ship: BuildFailed)."""
        pending, self._pending = self._pending, []
        for future in pending:
            try:
                future.result()
            except FileExistsError as exc:
                raise _two_ship(exc) from None

    def write(self, target: str, data: bytes, executable: bool) -> None:
        if executable:  # at once: installer stats and chmods a script it generated right after writing it
            self._write(target, data, executable)
            return
        self._pending.append(self._pool.submit(self._write, target, data, executable))

    def _write(self, target: str, data: bytes, executable: bool) -> None:
        parent = os.path.dirname(target)
        if parent not in self._made:  # two threads may both make it: exist_ok
            os.makedirs(parent, exist_ok=True)
            with self._guard:
                self._made.add(parent)
        # O_EXCL: a file another wheel wrote is refused (FileExistsError), as installer refuses it.
        # Created read-only (less the umask), as the import check's tree has them once zipped (`Trees.keep`).
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o555 if executable else 0o444)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            if executable:  # every x bit whatever the umask, as installer does: the zip says 0755
                os.fchmod(fd, stat.S_IMODE(os.fstat(fd).st_mode) | 0o111)

    def destination(self, scheme: dict[str, str]) -> WheelDestination:
        made = _destination_type()(scheme, interpreter="/var/lang/bin/python", script_kind="posix")
        made.writer = self
        return made


@functools.cache
def _destination_type() -> type:
    """installer's destination, handing each file to the `_Writer` (installer is imported on first use).

    The same files, modes and RECORD rows as `SchemeDictionaryDestination.write_to_fs` (RECORD itself
    is written through it too); a row is made from the bytes in hand, so it does not wait for the file.
    """
    from installer.destinations import SchemeDictionaryDestination
    from installer.records import Hash, RecordEntry

    class Destination(SchemeDictionaryDestination):
        writer: _Writer  # set right after it is made (installer's destination is a dataclass)

        def write_to_fs(self, scheme, path, stream, is_executable):
            target = str(self._path_with_destdir(scheme, path))  # refuses a path outside its folder
            data = stream.read()
            self.writer.write(target, data, is_executable)
            raw = hashlib.new(self.hash_algorithm, data).digest()
            if self.hash_algorithm == "sha256":
                self.writer.written[target] = raw.hex()
            digest = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
            return RecordEntry(path, Hash(self.hash_algorithm, digest), len(data))

    return Destination
