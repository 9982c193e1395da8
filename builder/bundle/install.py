"""Unpacking locked wheels into a bundle's folder: in-process with `installer`, one open per file.

Each wheel's sha256 is checked against the lock again (the same hash enforcement
as `pip install --require-hashes`, without a pip process per bundle), then
`installer` (pypa's wheel installer) lays it out the way `pip install --target`
does. On a layer of small files, creating the files is most of the cost and it
is the kernel's: each file is opened once, read-only from the start, and each
folder made once. Two wheels are unpacked at a time, each into its own folders
(`WHEELS_AT_ONCE`): threads writing files of one wheel were measured and
dropped (on this machine's ext4 they contend in the kernel over the same
folders and doubled the system time), but two wheels on two threads beat one
(paired cold builds of the real-app fixture: 2.42 s -> 2.30 s, medians of 5).

A member deflated in the wheel is inflated here rather than by zipfile
(`zipwriter.unpack_member`, which checks the stream ends where it should), and
the file written says where that stream lies (`zipwriter.Packed`): the zip
copies it from the wheel's bytes rather than deflating the file again.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import os
import stat
import zipfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import attrs

from builder.bundle.zipwriter import Packed, unpack_member
from builder.errors import BuildFailed
from builder.lock.lockfile import LockedRequirement
from builder.runtime.bytecode import SOURCE_MTIME

if TYPE_CHECKING:
    from installer.destinations import WheelDestination

WHEELS_AT_ONCE = 2


@attrs.frozen
class Unpacked:
    """A file `install` wrote: the sha256 of its bytes, and where they lie deflated in their wheel (None: made here)."""

    sha256: str
    packed: Packed | None = None
    executable: bool = False


def install(wheels: Iterable[tuple[LockedRequirement, Path]], target: Path) -> dict[str, Unpacked]:
    """Unpack each wheel into `target` the way `pip install --target` lays it out, hashes re-checked.

    Files are created read-only (0444, scripts 0555, less the umask): zipped, they become the import
    check's tree as they are; a `.py` gets the trees' one mtime (`bytecode.SOURCE_MTIME`), which the
    bytecode compiled ahead from the wheels says (`bytecode.Compiler`). Returns every file written, by
    its path: its hex sha256 (the RECORD rows are made from the same digests), so nothing needs to read
    it back to hash it, and its wheel member's deflate stream when the file is that member as it is.
    """
    from installer import install as install_wheel  # imported here: a no-op build installs nothing
    from installer.sources import WheelFile

    target.mkdir(parents=True, exist_ok=True)
    writer = _Writer(target)

    def one(req: LockedRequirement, wheel: Path) -> None:
        data = wheel.read_bytes()  # read once: hashed, then unzipped from memory
        digest = hashlib.sha256(data).hexdigest()
        if f"sha256:{digest}" not in req.hashes:
            raise BuildFailed(
                "install",
                f"hash mismatch for {req.name}=={req.version}: cached {wheel.name} has sha256 {digest}, "
                "which the lock does not pin",
                hint="The wheel cache was changed on disk: delete it (see RELAY_CACHE_DIR) and rebuild.",
            )
        scheme = {
            "purelib": str(target),
            "platlib": str(target),
            "headers": str(target / "include" / req.name),
            "scripts": str(target / "bin"),
            "data": str(target),
        }
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                archive.filename = str(wheel)  # what installer names the wheel by
                destination = writer.destination(scheme, _Members(wheel, data, archive))
                install_wheel(source=WheelFile(archive), destination=destination, additional_metadata={})
        except FileExistsError as exc:
            raise BuildFailed("install", f"two locked packages ship the same file: {exc.filename}") from None
        except BuildFailed:  # a member that is not what the wheel's directory says (`unpack_member`)
            raise
        except Exception as exc:  # installer raises plain exceptions for invalid wheels
            raise BuildFailed("install", f"{wheel.name}: {exc}") from exc

    # Two wheels at a time (each into folders of its own): creating files is the kernel's work, on both cores.
    with ThreadPoolExecutor(max_workers=WHEELS_AT_ONCE, thread_name_prefix="relay-install") as pool:
        running = [pool.submit(one, req, wheel) for req, wheel in wheels]
        try:
            for done in running:
                done.result()
        except BaseException:
            for pending in running:
                pending.cancel()
            raise
    return writer.written


class _Members:
    """The members of one wheel, in memory (its bytes as hashed against the lock)."""

    def __init__(self, wheel: Path, data: bytes, archive: zipfile.ZipFile) -> None:
        self.wheel, self.data, self.archive = wheel, data, archive

    def read(self, stream: BinaryIO) -> tuple[bytes, Packed | None]:
        """What `stream` holds, and where it lies deflated when it is a deflated member as it is."""
        if isinstance(stream, zipfile.ZipExtFile):  # else made or rewritten by installer (a script's shebang)
            unpacked = unpack_member(self.wheel, self.data, self.archive.getinfo(stream.name))
            if unpacked is not None:
                return unpacked
        return stream.read(), None


class _Writer:
    """Each file created read-only with one open, each folder made once; the sha256 of what was written."""

    def __init__(self, target: Path) -> None:
        self._made: set[str] = {str(target)}
        self.written: dict[str, Unpacked] = {}  # path -> what was written there

    def write(self, target: str, data: bytes, executable: bool, written: Unpacked) -> None:
        parent = os.path.dirname(target)
        if parent not in self._made:
            os.makedirs(parent, exist_ok=True)
            self._made.add(parent)
        # O_EXCL: a file another wheel wrote is refused (FileExistsError), as installer refuses it.
        # Created read-only (less the umask), as the import check's tree has them once zipped (`Trees.keep`).
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o555 if executable else 0o444)
        try:  # the descriptor itself, not a file object: no fstat, isatty or seek per file (~3 calls of 2,700)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if executable:  # every x bit whatever the umask, as installer does: the zip says 0755
                os.fchmod(fd, stat.S_IMODE(os.fstat(fd).st_mode) | 0o111)
            if target.endswith(".py"):
                os.utime(fd, (SOURCE_MTIME, SOURCE_MTIME))
        finally:
            os.close(fd)
        self.written[target] = written

    def destination(self, scheme: dict[str, str], members: _Members) -> WheelDestination:
        made = _destination_type()(scheme, interpreter="/var/lang/bin/python", script_kind="posix")
        made.writer, made.members = self, members
        return made


@functools.cache
def _destination_type() -> type:
    """installer's destination, handing each file to the `_Writer` (installer is imported on first use).

    The same files, modes and RECORD rows as `SchemeDictionaryDestination.write_to_fs` (which checks,
    makes the parent and opens through pathlib per file); RECORD itself is written through it too. The
    target's path is checked as installer checks it, on strings (its pathlib check, ~20 µs a file, was
    ~55 ms of the real-app layer's install, holding the GIL).
    """
    from installer.destinations import SchemeDictionaryDestination
    from installer.records import Hash, RecordEntry

    class Destination(SchemeDictionaryDestination):
        writer: _Writer  # set right after it is made (installer's destination is a dataclass)
        members: _Members

        def write_to_fs(self, scheme, path, stream, is_executable):
            target = self._target(scheme, path)
            data, packed = self.members.read(stream)
            sha = bytes.fromhex(packed.sha256) if packed is not None else hashlib.sha256(data).digest()
            self.writer.write(target, data, is_executable, Unpacked(sha.hex(), packed, bool(is_executable)))
            raw = sha if self.hash_algorithm == "sha256" else hashlib.new(self.hash_algorithm, data).digest()
            digest = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
            return RecordEntry(path, Hash(self.hash_algorithm, digest), len(data))

        def _target(self, scheme, path) -> str:
            """`_path_with_destdir`: where `path` goes, refused (ValueError) outside its scheme's folder."""
            if self.destdir is not None:
                return str(self._path_with_destdir(scheme, path))
            folder = os.path.abspath(self.scheme_dict[scheme])
            target = os.path.abspath(os.path.join(folder, path))
            if not target.startswith(os.path.join(folder, "")):
                raise ValueError(f"Attempting to write {path} outside of the target directory")
            return target

    return Destination
