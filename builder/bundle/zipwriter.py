"""The deterministic zip writer: the same files give the same bytes, anywhere.

Nothing of the host leaks into the archive: entries are sorted by the UTF-8
bytes of their path, every entry carries one timestamp (from
SOURCE_DATE_EPOCH, in UTC), modes are normalised to 0644/0755, there are no
directory entries, extra fields or comments, and the deflate level is fixed.

A file unzipped unchanged from a wheel is not deflated again: its deflate
stream is copied from the wheel's bytes as they lie there (`Packed`, made by
`unpack_member` when the file is unzipped). The wheel is pinned by its sha256,
so the same lock gives the same bytes; deflating is most of the cost of a
layer's zip. The other files are deflated here, so the sha256 of the result
still depends on the zlib that compresses them (zlib and zlib-ng differ):
`BundleStats.content_digest` identifies the files independently of it.
"""

from __future__ import annotations

import calendar
import hashlib
import itertools
import os
import re
import stat
import struct
import tempfile
import time
import zipfile
import zlib
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from fnmatch import fnmatchcase
from pathlib import Path
from typing import BinaryIO

import attrs

from builder.bundle.cores import available_cores
from builder.bundle.digest import code_sha256, tree_digest
from builder.errors import BuildFailed
from builder.frozen import to_tuple

STEP = "package"
COMPRESS_LEVEL = 6
FILE_MODE = 0o644
EXEC_MODE = 0o755
# The DOS date fields of a zip hold the years 1980..2107 only.
ZIP_MIN_EPOCH = calendar.timegm((1980, 1, 1, 0, 0, 0))
ZIP_MAX_EPOCH = calendar.timegm((2107, 12, 31, 23, 59, 59))
_CREATE_SYSTEM_UNIX = 3  # so unzip and Lambda read the Unix modes in external_attr
_ZIP_VERSION = 20  # 2.0: deflate
_INTEGER = re.compile(r"^-?[0-9]+$")
_PATH_HINT = "Archive paths must be relative, '/'-separated, without '..', '.', empty parts or backslashes."


@attrs.frozen
class Packed:
    """A file's deflate stream as it lies in the wheel it was unzipped from, and what it inflates to."""

    wheel: Path  # named in messages
    data: bytes = attrs.field(eq=False, repr=False)  # the wheel's bytes, as hashed against the lock
    offset: int  # the stream's first byte in them
    compress_size: int
    file_size: int
    crc: int  # CRC-32 of the inflated bytes
    sha256: str  # of the inflated bytes

    def stream(self) -> bytes:
        return self.data[self.offset : self.offset + self.compress_size]


def unpack_member(wheel: Path, data: bytes, info: zipfile.ZipInfo) -> tuple[bytes, Packed] | None:
    """The member `info` of the zip `data` inflated, and where its deflate stream lies; None unless deflated.

    Stricter than zipfile, which stops at the size the directory says: the stream must end exactly there,
    with nothing after it and the CRC said, so what unzip or Lambda reads back from the copied stream is
    these bytes (`BuildFailed` if not).
    """
    if info.compress_type != zipfile.ZIP_DEFLATED or info.flag_bits & 0x1:  # encrypted: not ours to copy
        return None
    try:
        header = _LOCAL.unpack_from(data, info.header_offset)  # signature, ..., name length, extra length
    except struct.error:
        header = (b"",)
    if header[0] != b"PK\x03\x04":
        raise BuildFailed("install", f"{wheel.name}: no member {info.filename} where its directory says",
                          hint=_WHEEL_HINT)
    offset = info.header_offset + _LOCAL.size + header[-2] + header[-1]
    stream = data[offset : offset + info.compress_size]
    inflater = zlib.decompressobj(-15)
    try:
        inflated = inflater.decompress(stream, info.file_size + 1)
    except zlib.error as exc:
        raise BuildFailed("install", f"{wheel.name}: {info.filename} does not inflate: {exc}",
                          hint=_WHEEL_HINT) from exc
    if (len(stream) != info.compress_size or not inflater.eof or inflater.unused_data or inflater.unconsumed_tail
            or len(inflated) != info.file_size or zlib.crc32(inflated) != info.CRC):
        raise BuildFailed("install", f"{wheel.name}: {info.filename}'s deflate stream is not the file its directory names",
                          hint=_WHEEL_HINT)
    return inflated, Packed(wheel, data, offset, info.compress_size, info.file_size, info.CRC,
                            hashlib.sha256(inflated).hexdigest())


_WHEEL_HINT = "The wheel is damaged: if it is in relay's wheel cache, delete the cache (see RELAY_CACHE_DIR) and rebuild."


@attrs.frozen
class ZipEntry:
    path: str  # archive path, "/" separated, relative
    source: Path  # file on disk
    executable: bool  # the source file has any x bit
    packed: Packed | None = None  # the same bytes, deflated in a wheel: copied from there (see the module)


@attrs.frozen
class BundleStats:
    sha256: str
    code_sha256: str
    content_digest: str
    zipped_size: int
    unzipped_size: int
    files: int
    # (group, unzipped bytes), biggest first; see `group_of`.
    contributors: tuple[tuple[str, int], ...] = attrs.field(converter=to_tuple)


def zip_epoch(environ: Mapping[str, str] = os.environ) -> int:
    """The archive timestamp: SOURCE_DATE_EPOCH clamped to what a zip can hold.

    Unset or empty means 1980-01-01 00:00:00 UTC, so builds are reproducible by
    default; CI systems often export the variable empty.
    """
    raw = environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return ZIP_MIN_EPOCH
    if not _INTEGER.match(raw):
        raise BuildFailed(
            STEP,
            f"SOURCE_DATE_EPOCH={raw!r} is not an integer",
            hint="Set SOURCE_DATE_EPOCH to seconds since 1970-01-01 UTC (e.g. `git log -1 --format=%ct`), or unset it.",
        )
    return min(max(int(raw), ZIP_MIN_EPOCH), ZIP_MAX_EPOCH)


def collect_tree(root: Path, *, prefix: str = "", exclude: Sequence[str] = ()) -> list[ZipEntry]:
    """Every regular file under `root` as a ZipEntry, sorted by archive path.

    A name is skipped when any pattern in `exclude` matches its own name or its
    path relative to `root` (an excluded folder is not entered). Symlinks are
    refused rather than followed: following one could pull files from outside
    the tree, and a link's target differs from host to host.
    """
    base = _resolved_root(root)
    head = "/".join(part for part in prefix.split("/") if part)
    entries: list[ZipEntry] = []
    pending = [(base, "")]
    while pending:
        folder, rel_folder = pending.pop()
        for item in _scan(folder):
            rel = f"{rel_folder}/{item.name}" if rel_folder else item.name
            if _excluded(item.name, rel, exclude):
                continue
            # Walking from the resolved root without ever following a link keeps
            # every path inside root; no per-file resolve() is needed.
            if item.is_symlink():
                raise BuildFailed(
                    STEP,
                    f"{item.path} is a symlink; relay does not follow links out of the source tree",
                    hint="Replace the link with the file or folder it points to, or exclude it.",
                )
            if item.is_dir(follow_symlinks=False):
                pending.append((Path(item.path), rel))
            elif item.is_file(follow_symlinks=False):
                executable = bool(item.stat(follow_symlinks=False).st_mode & 0o111)
                path = f"{head}/{rel}" if head else rel
                entries.append(ZipEntry(path=path, source=Path(item.path), executable=executable))
            else:
                raise BuildFailed(
                    STEP,
                    f"{item.path} is not a regular file or folder (a socket, fifo or device)",
                    hint="Remove it from the source tree or exclude it.",
                )
    return sorted(entries, key=lambda entry: _path_key(entry.path))


def entries_of(root: Path, files: Mapping[str, bool], *, prefix: str = "") -> list[ZipEntry]:
    """`files` (absolute path under `root` -> executable) as ZipEntries, sorted by archive path: what
    `collect_tree` gives for a tree whose files the caller wrote itself (relay's installer), unwalked."""
    base = os.path.join(os.path.abspath(root), "")
    head = "/".join(part for part in prefix.split("/") if part)
    entries = []
    for path, executable in files.items():
        rel = path[len(base):].replace(os.sep, "/") if path.startswith(base) else ""
        if not rel:
            raise BuildFailed(STEP, f"{path} is not under {root}")
        entries.append(ZipEntry(path=f"{head}/{rel}" if head else rel, source=Path(path), executable=executable))
    return sorted(entries, key=lambda entry: _path_key(entry.path))


def write_zip(entries: Iterable[ZipEntry], dest: Path, *, epoch: int) -> BundleStats:
    """Write `entries` to `dest` deterministically and atomically; return its stats.

    The zip is written to a temp file next to `dest` and renamed into place, so
    `dest` is either the old file or the complete new one.
    """
    ordered = _checked(entries)
    date_time = _date_time(epoch)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw:
            sink = _Sink(raw)
            written = _write_archive(sink, ordered, date_time)
            raw.flush()
            os.fsync(raw.fileno())
        zipped_size, sha256 = sink.size, sink.sha256.hexdigest()
        # mkstemp creates 0600; the bundle is not a secret, and other tools read it.
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return BundleStats(
        sha256=sha256,
        code_sha256=code_sha256(sha256),
        content_digest=tree_digest((path, mode, digest) for path, mode, digest, _ in written),
        zipped_size=zipped_size,
        unzipped_size=sum(size for *_, size in written),
        files=len(written),
        contributors=contributors((path, size) for path, _, _, size in written),
    )


def group_of(path: str) -> str:
    """The part of a bundle a file counts towards: its top folder (two levels under python/)."""
    parts = path.split("/")
    depth = 2 if parts[0] == "python" and len(parts) > 1 else 1
    return "/".join(parts[:depth])


def contributors(sizes: Iterable[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """Unzipped bytes per group, biggest first (ties by name, so the order is stable)."""
    totals: dict[str, int] = {}
    for path, size in sizes:
        group = group_of(path)
        totals[group] = totals.get(group, 0) + size
    return tuple(sorted(totals.items(), key=lambda item: (-item[1], item[0])))


def _resolved_root(root: Path) -> Path:
    try:
        base = root.resolve(strict=True)
    except (FileNotFoundError, RuntimeError) as exc:
        raise BuildFailed(STEP, f"{root} does not exist", hint="Check the folder named in relay.toml.") from exc
    if not base.is_dir():
        raise BuildFailed(STEP, f"{root} is not a folder", hint="Check the folder named in relay.toml.")
    return base


def _scan(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as items:
            return list(items)
    except OSError as exc:
        raise BuildFailed(STEP, f"cannot list {folder}: {exc.strerror}") from exc


def _excluded(name: str, rel: str, patterns: Sequence[str]) -> bool:
    # fnmatchcase: the same answer on every OS (fnmatch folds case on Windows).
    return any(fnmatchcase(name, pattern) or fnmatchcase(rel, pattern) for pattern in patterns)


def _path_key(path: str) -> bytes:
    return path.encode("utf-8", "surrogateescape")


def _checked(entries: Iterable[ZipEntry]) -> list[ZipEntry]:
    """Valid, unique archive paths, in UTF-8 byte order."""
    ordered = sorted(entries, key=lambda entry: _path_key(entry.path))
    for entry in ordered:
        _check_path(entry.path)
    paths = [entry.path for entry in ordered]
    for previous, current in itertools.pairwise(paths):
        if previous == current:
            raise BuildFailed(
                STEP,
                f"{current} would be written twice",
                hint="Two sources map to the same archive path: rename or exclude one of them.",
            )
    files = set(paths)
    for path in paths:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder in files:
                raise BuildFailed(
                    STEP,
                    f"{folder} would be both a file and a folder (it holds {path})",
                    hint="Rename or exclude one of them.",
                )
    return ordered


def _check_path(path: str) -> None:
    problem = _path_problem(path)
    if problem:
        raise BuildFailed(STEP, f"{path!r} is not a valid archive path: {problem}", hint=_PATH_HINT)


def _path_problem(path: str) -> str:
    if not path:
        return "it is empty"
    if path.startswith("/"):
        return "it is absolute"
    if "\\" in path:
        return "it holds a backslash"
    if "\x00" in path or "\n" in path:
        return "it holds a NUL or newline character"
    if any(part in ("", ".", "..") for part in path.split("/")):
        return "it holds an empty, '.' or '..' part"
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid UTF-8"
    return ""


ZipDateTime = tuple[int, int, int, int, int, int]


def _date_time(epoch: int) -> ZipDateTime:
    # gmtime, never localtime: TZ must not change the bytes.
    clamped = min(max(epoch, ZIP_MIN_EPOCH), ZIP_MAX_EPOCH)
    return tuple(time.gmtime(clamped)[:6])  # type: ignore[return-value]


def _mode(entry: ZipEntry) -> int:
    return EXEC_MODE if entry.executable else FILE_MODE


class _Sink:
    """The zip file being written: counts and hashes every byte on the way (nothing is read back)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw, self.size, self.sha256 = raw, 0, hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.raw.write(data)
        self.sha256.update(data)
        self.size += len(data)


# The zip format (APPNOTE 4.3): each member's local header then its deflate stream, the central
# directory, and its end record (zip64's too when there are more members than 16 bits count).
_LOCAL = struct.Struct("<4s2B4HL2L2H")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_END = struct.Struct("<4s4H2LH")
_END64 = struct.Struct("<4sQ2H2L4Q")
_END64_LOCATOR = struct.Struct("<4sLQL")
_UTF8_FLAG = 0x800  # the name is UTF-8 (set only when it is not ASCII)
_MAX_32 = 0xFFFFFFFF
_MAX_16 = 0xFFFF


def _write_archive(sink: _Sink, ordered: list[ZipEntry], date_time: ZipDateTime) -> list[tuple[str, int, str, int]]:
    """Write the entries; return (path, mode, sha256, size) of each, read in the same pass.

    Files are read, hashed and deflated on a few threads (zlib and hashlib release the GIL) a little
    ahead of the one thread that writes them in order: the bytes are those of deflating each file in
    one stream at `COMPRESS_LEVEL` (or the wheel's stream, `Packed`), however many threads did it. Each
    header is written once, its CRC and sizes known (no data descriptors, no seeking back): the same
    bytes zipfile writes for these members.
    """
    year, month, day, hour, minute, second = date_time
    dos_time, dos_date = hour << 11 | minute << 5 | second // 2, (year - 1980) << 9 | month << 5 | day
    written: list[tuple[str, int, str, int]] = []
    central: list[bytes] = []
    workers = _workers()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="relay-zip") as pool:
        ahead: deque[tuple[ZipEntry, Future[_Member] | _Member]] = deque()
        queue = iter(ordered)
        while True:
            while len(ahead) < workers * _AHEAD and (entry := next(queue, None)) is not None:
                # A file copied from its wheel needs no worker (`Packed`): only the others are deflated on one.
                ahead.append((entry, _copied(entry.packed) if entry.packed else pool.submit(_deflated, entry)))
            if not ahead:
                break
            entry, pending = ahead.popleft()
            try:
                member = pending.result() if isinstance(pending, Future) else pending
            except BaseException:
                for _, other in ahead:
                    if isinstance(other, Future):
                        other.cancel()
                raise
            central.append(_write_member(sink, entry, member, dos_time, dos_date))
            written.append((entry.path, _mode(entry), member.sha256, member.size))
    _write_end(sink, central)
    return written


def _write_member(sink: _Sink, entry: ZipEntry, member: _Member, dos_time: int, dos_date: int) -> bytes:
    """Write one member's local header and stream; return its central directory record."""
    if member.size > _MAX_32 or len(member.deflated) > _MAX_32 or sink.size > _MAX_32:
        raise BuildFailed(STEP, f"{entry.path}: the bundle passes 4 GiB, far over Lambda's 250 MB unzipped",
                          hint="Drop the dependencies or files that make it that large.")
    try:
        name, flags = entry.path.encode("ascii"), 0
    except UnicodeEncodeError:
        name, flags = entry.path.encode("utf-8"), _UTF8_FLAG
    fields = (flags, zipfile.ZIP_DEFLATED, dos_time, dos_date, member.crc, len(member.deflated), member.size)
    offset = sink.size
    sink.write(_LOCAL.pack(b"PK\x03\x04", _ZIP_VERSION, 0, *fields, len(name), 0) + name)
    sink.write(member.deflated)
    external = (stat.S_IFREG | _mode(entry)) << 16
    return _CENTRAL.pack(b"PK\x01\x02", _ZIP_VERSION, _CREATE_SYSTEM_UNIX, _ZIP_VERSION, 0, *fields, len(name),
                         0, 0, 0, 0, external, offset) + name


def _write_end(sink: _Sink, central: list[bytes]) -> None:
    """The central directory and its end record; zip64's end record and locator before it past 65,535 members."""
    start = sink.size
    for record in central:
        sink.write(record)
    size, count = sink.size - start, len(central)
    if count > _MAX_16:
        end64 = sink.size
        sink.write(_END64.pack(b"PK\x06\x06", _END64.size - 12, 45, 45, 0, 0, count, count, size, start))
        sink.write(_END64_LOCATOR.pack(b"PK\x06\x07", 0, end64, 1))
    shown = min(count, _MAX_16)
    sink.write(_END.pack(b"PK\x05\x06", 0, 0, shown, shown, size, start, 0))


# Members read and deflated ahead of the writer, per thread: bounds the memory held for it.
_AHEAD = 8


def _workers() -> int:
    return min(available_cores(), 8)


@attrs.frozen
class _Member:
    """A member's size, CRC and sha256, and its raw deflate stream."""

    size: int
    crc: int
    sha256: str
    deflated: bytes


def _copied(packed: Packed) -> _Member:
    """A file as its wheel has it deflated: checked when it was unpacked (`unpack_member`)."""
    return _Member(packed.file_size, packed.crc, packed.sha256, packed.stream())


def _deflated(entry: ZipEntry) -> _Member:
    with _open_source(entry) as source:
        data = source.read()
    # What zipfile's own compressor for ZIP_DEFLATED is: a raw stream (wbits -15) at the member's level.
    compressor = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -15)
    deflated = compressor.compress(data) + compressor.flush()
    return _Member(len(data), zlib.crc32(data), hashlib.sha256(data).hexdigest(), deflated)


def _open_source(entry: ZipEntry) -> BinaryIO:
    """Open a regular file for reading, refusing a symlink even if a caller built the entry by hand."""
    try:
        fd = os.open(entry.source, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        if os.path.islink(entry.source):
            raise BuildFailed(
                STEP,
                f"{entry.source} is a symlink; relay does not follow links",
                hint="Replace the link with the file it points to, or exclude it.",
            ) from exc
        raise BuildFailed(STEP, f"cannot read {entry.source} (for {entry.path}): {exc.strerror}") from exc
    handle = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        handle.close()
        raise BuildFailed(STEP, f"{entry.source} is not a regular file", hint="Only regular files can be packaged.")
    return handle
