"""The deterministic zip writer, against real files and real zips."""

from __future__ import annotations

import base64
import calendar
import hashlib
import os
import random
import shutil
import stat
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import attrs
import pytest

from builder.bundle.digest import tree_digest
from builder.bundle.zipwriter import (
    ZIP_MAX_EPOCH,
    ZIP_MIN_EPOCH,
    Packed,
    ZipEntry,
    collect_tree,
    entries_of,
    group_of,
    unpack_member,
    write_zip,
    zip_epoch,
)
from builder.errors import BuildFailed

EPOCH = 1_700_000_001  # odd on purpose: zip keeps 2-second resolution
REPO = Path(__file__).resolve().parents[2]

# (path, content, executable); includes non-ASCII names and names whose
# byte order differs from a case-insensitive order.
FILES = [
    ("handler.py", b"def handle(event, context):\n    return {'ok': True}\n", False),
    ("Zeta.py", b"Z = 1\n", False),
    ("pkg/__init__.py", b"", False),
    ("pkg/mod.py", b"VALUE = 'x' * 4096\n" * 20, False),
    ("pkg/sub/deep.txt", b"deep\n", False),
    ("bin/tool", b"#!/bin/sh\necho tool\n", True),
    ("data/\u00fcber.json", b'{"a": 1}\n', False),
    ("data/\u65e5\u672c.txt", b"nihon\n", False),
]


def make_tree(root: Path, *, reverse: bool, mtime: int) -> Path:
    """Create FILES under root, honouring the current umask (os.open applies it)."""
    for rel, content, executable in reversed(FILES) if reverse else FILES:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o777 if executable else 0o666)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.utime(path, (mtime, mtime))
    (root / "empty" / "folder").mkdir(parents=True)  # must not appear: no directory entries
    return root


@pytest.fixture
def restore_host(monkeypatch):
    """Put TZ and the umask back after a test changes them."""
    old_umask = os.umask(0o022)
    os.umask(old_umask)
    monkeypatch.setenv("TZ", os.environ.get("TZ", "UTC"))
    yield
    os.umask(old_umask)
    monkeypatch.undo()
    time.tzset()


def build_under(tmp: Path, *, umask: int, tz: str, reverse: bool, mtime: int) -> bytes:
    os.umask(umask)
    os.environ["TZ"] = tz
    time.tzset()
    src = make_tree(tmp / "some" / "src", reverse=reverse, mtime=mtime)
    dest = tmp / "dist" / "bundle.zip"
    write_zip(collect_tree(src), dest, epoch=zip_epoch({"SOURCE_DATE_EPOCH": str(EPOCH)}))
    return dest.read_bytes()


def test_same_bytes_across_folders_mtimes_umask_and_tz(tmp_path, restore_host):
    first = build_under(tmp_path / "a", umask=0o022, tz="UTC", reverse=False, mtime=1_000_000_000)
    # UTC+14: local time would land on another day, so a localtime() slip changes the bytes.
    second = build_under(tmp_path / "b-other", umask=0o077, tz="Pacific/Kiritimati", reverse=True, mtime=1_720_000_000)
    third = build_under(tmp_path / "c", umask=0o002, tz="America/St_Johns", reverse=False, mtime=EPOCH + 12345)
    assert first == second == third


def test_entry_order_given_does_not_matter(tmp_path):
    src = make_tree(tmp_path / "src", reverse=False, mtime=EPOCH)
    entries = collect_tree(src)
    one = write_zip(entries, tmp_path / "one.zip", epoch=EPOCH)
    two = write_zip(list(reversed(entries)), tmp_path / "two.zip", epoch=EPOCH)
    assert one.sha256 == two.sha256
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()


def test_archive_layout(tmp_path):
    src = make_tree(tmp_path / "src", reverse=True, mtime=EPOCH)
    dest = tmp_path / "bundle.zip"
    stats = write_zip(collect_tree(src), dest, epoch=EPOCH)

    with zipfile.ZipFile(dest) as archive:
        infos = archive.infolist()
        assert archive.comment == b""
        assert archive.testzip() is None
        names = [info.filename for info in infos]
        assert names == sorted((rel for rel, _, _ in FILES), key=lambda p: p.encode("utf-8"))
        assert not any(name.endswith("/") for name in names)
        assert {info.date_time for info in infos} == {(2023, 11, 14, 22, 13, 20)}
        for info in infos:
            executable = {rel: x for rel, _, x in FILES}[info.filename]
            assert info.external_attr >> 16 == (0o100755 if executable else 0o100644)
            assert info.create_system == 3
            assert (info.create_version, info.extract_version) == (20, 20)
            assert info.extra == b"" and info.comment == b""
            assert info.compress_type == zipfile.ZIP_DEFLATED
            # Only the UTF-8 name flag may be set: no data descriptor (bit 3), nothing else.
            assert info.flag_bits == (0x800 if not info.filename.isascii() else 0)
            assert archive.read(info) == {rel: c for rel, c, _ in FILES}[info.filename]
    assert stats.files == len(FILES)
    assert stats.unzipped_size == sum(len(content) for _, content, _ in FILES)
    assert stats.zipped_size == dest.stat().st_size
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644


def test_modes_after_unzip(tmp_path):
    unzip = shutil.which("unzip")
    if unzip is None:
        pytest.skip("unzip is not installed")
    src = make_tree(tmp_path / "src", reverse=False, mtime=EPOCH)
    os.chmod(src / "pkg" / "mod.py", 0o600)  # odd source modes are normalised
    dest = tmp_path / "bundle.zip"
    write_zip(collect_tree(src), dest, epoch=EPOCH)
    out = tmp_path / "out"
    subprocess.run([unzip, "-q", str(dest), "-d", str(out)], check=True)
    modes = {
        p.relative_to(out).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in out.rglob("*") if p.is_file()
    }
    assert modes == {rel: 0o755 if x else 0o644 for rel, _, x in FILES}


def test_digests(tmp_path):
    src = make_tree(tmp_path / "src", reverse=False, mtime=EPOCH)
    dest = tmp_path / "bundle.zip"
    stats = write_zip(collect_tree(src), dest, epoch=EPOCH)
    raw = dest.read_bytes()
    assert stats.sha256 == hashlib.sha256(raw).hexdigest()
    assert stats.code_sha256 == base64.b64encode(hashlib.sha256(raw).digest()).decode()
    expected = tree_digest(
        (rel, 0o755 if x else 0o644, hashlib.sha256(content).hexdigest()) for rel, content, x in FILES
    )
    assert stats.content_digest == expected


def test_content_digest_ignores_epoch_but_sha256_does_not(tmp_path):
    src = make_tree(tmp_path / "src", reverse=False, mtime=EPOCH)
    entries = collect_tree(src)
    one = write_zip(entries, tmp_path / "one.zip", epoch=EPOCH)
    two = write_zip(entries, tmp_path / "two.zip", epoch=EPOCH + 3600)
    assert one.content_digest == two.content_digest
    assert one.sha256 != two.sha256


def test_fixed_deflate_level(tmp_path):
    rng = random.Random(7)  # text with uneven repetition: levels 5, 6 and 9 all compress it differently
    words = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 8))) for _ in range(300)]
    content = " ".join(rng.choice(words) for _ in range(60000)).encode()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "big.txt").write_bytes(content)
    dest = tmp_path / "bundle.zip"
    write_zip(collect_tree(tmp_path / "src"), dest, epoch=EPOCH)
    with zipfile.ZipFile(dest) as archive:
        info = archive.getinfo("big.txt")
    raw = dest.read_bytes()
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26 : info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    stored = raw[start : start + info.compress_size]

    def deflate(level: int) -> bytes:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
        return compressor.compress(content) + compressor.flush()

    assert deflate(6) not in (deflate(5), deflate(9))  # the input tells levels apart
    assert stored == deflate(6)


def test_contributors_groups(tmp_path):
    root = tmp_path / "layer"
    for rel, size in [
        ("python/pydantic_core/_core.so", 3000),
        ("python/pydantic_core/__init__.py", 100),
        ("python/shared/util.py", 500),
        ("python/six.py", 700),
    ]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x" * size)
    stats = write_zip(collect_tree(root), tmp_path / "layer.zip", epoch=EPOCH)
    assert stats.contributors == (("python/pydantic_core", 3100), ("python/six.py", 700), ("python/shared", 500))
    assert group_of("big.bin") == "big.bin"
    assert group_of("orders/handler.py") == "orders"
    assert group_of("python") == "python"


def test_collect_tree_excludes_by_name_and_relative_path(tmp_path):
    src = tmp_path / "src"
    for rel in ["app.py", "pkg/a.py", "pkg/__pycache__/a.cpython-312.pyc", "tests/test_a.py", "pkg/tests/keep.py",
                "requirements.in", "notes.pyc"]:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text("x")
    # A symlink inside an excluded folder is never looked at.
    os.symlink("/etc/passwd", src / "pkg" / "__pycache__" / "link")
    entries = collect_tree(src, exclude=("__pycache__", "*.pyc", "tests/*", "requirements*.in"))
    assert [e.path for e in entries] == ["app.py", "pkg/a.py", "pkg/tests/keep.py"]
    # A bare name matches at any depth, unlike the relative-path pattern "tests/*" above.
    entries = collect_tree(src, exclude=("tests", "__pycache__"))
    assert [e.path for e in entries] == ["app.py", "notes.pyc", "pkg/a.py", "requirements.in"]


def test_collect_tree_prefix(tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "__init__.py").write_text("")
    for prefix in ("python/shared", "python/shared/", "/python/shared/"):
        assert [e.path for e in collect_tree(tmp_path / "shared", prefix=prefix)] == ["python/shared/__init__.py"]


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_symlink_refused(tmp_path, kind):
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.py").write_text("")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    target = outside / "secret.txt" if kind == "file" else outside
    os.symlink(target, src / "link")
    with pytest.raises(BuildFailed) as caught:
        collect_tree(src)
    assert caught.value.step == "package"
    assert "link is a symlink" in caught.value.message
    assert caught.value.hint


def test_write_zip_refuses_a_symlink_entry(tmp_path):
    (tmp_path / "real.txt").write_text("x")
    os.symlink(tmp_path / "real.txt", tmp_path / "link.txt")
    with pytest.raises(BuildFailed, match="symlink"):
        write_zip([ZipEntry("link.txt", tmp_path / "link.txt", False)], tmp_path / "b.zip", epoch=EPOCH)


def test_collect_tree_missing_root(tmp_path):
    with pytest.raises(BuildFailed, match="does not exist"):
        collect_tree(tmp_path / "nope")


@pytest.mark.parametrize(
    "path", ["", "/abs/x.py", "../x.py", "a/../x.py", "a/..", "a\\b.py", "a//b.py", "./a.py", "a/", "a\x00b", "a\nb"]
)
def test_bad_archive_paths_refused(tmp_path, path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(BuildFailed) as caught:
        write_zip([ZipEntry(path, tmp_path / "f", False)], tmp_path / "b.zip", epoch=EPOCH)
    assert caught.value.step == "package"
    assert not (tmp_path / "b.zip").exists()


def test_dotted_names_are_fine(tmp_path):
    (tmp_path / "f").write_text("x")
    stats = write_zip([ZipEntry("a..b/.hidden", tmp_path / "f", False)], tmp_path / "b.zip", epoch=EPOCH)
    assert stats.files == 1


def test_duplicate_path_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    (tmp_path / "g").write_text("y")
    entries = [ZipEntry("pkg/a.py", tmp_path / "f", False), ZipEntry("pkg/a.py", tmp_path / "g", False)]
    with pytest.raises(BuildFailed, match="pkg/a.py would be written twice"):
        write_zip(entries, tmp_path / "b.zip", epoch=EPOCH)


def test_file_and_folder_clash_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    entries = [ZipEntry("pkg", tmp_path / "f", False), ZipEntry("pkg/a.py", tmp_path / "f", False)]
    with pytest.raises(BuildFailed, match="pkg would be both a file and a folder"):
        write_zip(entries, tmp_path / "b.zip", epoch=EPOCH)


def test_failed_write_keeps_old_zip_and_leaves_no_temp(tmp_path):
    (tmp_path / "f").write_text("x")
    dest = tmp_path / "dist" / "b.zip"
    write_zip([ZipEntry("f", tmp_path / "f", False)], dest, epoch=EPOCH)
    before = dest.read_bytes()
    entries = [ZipEntry("a", tmp_path / "f", False), ZipEntry("z", tmp_path / "missing", False)]
    with pytest.raises(BuildFailed, match="cannot read"):
        write_zip(entries, dest, epoch=EPOCH)
    assert dest.read_bytes() == before
    assert sorted(p.name for p in dest.parent.iterdir()) == ["b.zip"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ZIP_MIN_EPOCH),
        ("", ZIP_MIN_EPOCH),
        ("0", ZIP_MIN_EPOCH),
        ("-7", ZIP_MIN_EPOCH),
        ("315532800", ZIP_MIN_EPOCH),
        (" 1700000001 ", 1_700_000_001),
        ("99999999999", ZIP_MAX_EPOCH),
    ],
)
def test_zip_epoch(value, expected):
    environ = {} if value is None else {"SOURCE_DATE_EPOCH": value}
    assert zip_epoch(environ) == expected


def test_zip_epoch_bounds():
    assert ZIP_MIN_EPOCH == calendar.timegm((1980, 1, 1, 0, 0, 0)) == 315_532_800
    assert time.gmtime(ZIP_MAX_EPOCH)[:6] == (2107, 12, 31, 23, 59, 59)


@pytest.mark.parametrize("value", ["abc", "1.5", "1e9", "0x10", "12 34"])
def test_zip_epoch_rejects_non_integers(value):
    with pytest.raises(BuildFailed) as caught:
        zip_epoch({"SOURCE_DATE_EPOCH": value})
    assert caught.value.step == "package"
    assert "SOURCE_DATE_EPOCH" in caught.value.message
    assert "SOURCE_DATE_EPOCH" in caught.value.hint


@pytest.mark.parametrize(
    ("epoch", "date_time"),
    [
        (0, (1980, 1, 1, 0, 0, 0)),
        (None, (1980, 1, 1, 0, 0, 0)),
        (10**12, (2107, 12, 31, 23, 59, 58)),
    ],
)
def test_clamped_timestamps_written(tmp_path, epoch, date_time):
    (tmp_path / "f").write_text("x")
    dest = tmp_path / "b.zip"
    value = zip_epoch({} if epoch is None else {"SOURCE_DATE_EPOCH": str(epoch)})
    write_zip([ZipEntry("f", tmp_path / "f", False)], dest, epoch=value)
    with zipfile.ZipFile(dest) as archive:
        assert archive.getinfo("f").date_time == date_time


# The bytes must not depend on which supported Python runs relay (zipfile changed
# between 3.11 and 3.13); the compressor is the one thing allowed to differ.
_OTHER_PYTHONS = sorted(Path.home().glob(".pyenv/versions/3.1[23]*/bin/python"))
_SCRIPT = """
import sys, zlib
from pathlib import Path
from builder.bundle.zipwriter import collect_tree, write_zip
stats = write_zip(collect_tree(Path(sys.argv[1])), Path(sys.argv[2]), epoch=int(sys.argv[3]))
print(stats.sha256, stats.content_digest, zlib.ZLIB_RUNTIME_VERSION)
"""


@pytest.mark.skipif(not _OTHER_PYTHONS, reason="no other Python 3.12/3.13 installed")
@pytest.mark.parametrize("python", _OTHER_PYTHONS, ids=lambda p: p.parents[1].name)
def test_same_bytes_under_other_pythons(tmp_path, python):
    src = make_tree(tmp_path / "src", reverse=False, mtime=EPOCH)
    here = write_zip(collect_tree(src), tmp_path / "here.zip", epoch=EPOCH)
    site = [p for p in sys.path if p.endswith("site-packages")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *site])}
    done = subprocess.run(
        [str(python), "-c", _SCRIPT, str(src), str(tmp_path / "there.zip"), str(EPOCH)],
        env=env, capture_output=True, text=True, check=True,
    )
    sha256, content_digest, zlib_version = done.stdout.split()
    assert content_digest == here.content_digest
    if zlib_version == zlib.ZLIB_RUNTIME_VERSION:
        assert sha256 == here.sha256


# -- files copied deflated from a wheel (`Packed`, `unpack_member`) ---------------------------------------


def a_wheel(tmp_path: Path, content: bytes, *, level: int = 9) -> Path:
    """A wheel holding `w/mod.py` deflated at `level` (not relay's), after another member."""
    wheel = tmp_path / "w-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(zipfile.ZipInfo("w/other.txt", (2020, 1, 1, 0, 0, 0)), b"x" * 100,
                         compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr(zipfile.ZipInfo("w/mod.py", (2020, 1, 1, 0, 0, 0)), content,
                         compress_type=zipfile.ZIP_DEFLATED, compresslevel=level)
        archive.writestr(zipfile.ZipInfo("w/stored.txt", (2020, 1, 1, 0, 0, 0)), b"stored")
    return wheel


def unpacked(wheel: Path, name: str, data: bytes | None = None, **changes) -> tuple[bytes, Packed] | None:
    data = wheel.read_bytes() if data is None else data
    with zipfile.ZipFile(wheel) as archive:
        info = archive.getinfo(name)
    for field, value in changes.items():
        setattr(info, field, value)
    return unpack_member(wheel, data, info)


def stream_of(zip_path: Path, name: str) -> bytes:
    with zipfile.ZipFile(zip_path) as archive:
        info = archive.getinfo(name)
    raw = zip_path.read_bytes()
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26 : info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    return raw[start : start + info.compress_size]


CONTENT = b"".join(b"VALUE_%d = %r\n" % (i, "x" * (i % 40)) for i in range(3000))


def test_a_packed_file_is_copied_deflated_from_its_wheel_and_reads_back_the_same(tmp_path):
    wheel = a_wheel(tmp_path, CONTENT)
    found = unpacked(wheel, "w/mod.py")
    assert found is not None
    data, packed = found
    assert data == CONTENT and packed.sha256 == hashlib.sha256(CONTENT).hexdigest()
    assert unpacked(wheel, "w/stored.txt") is None  # not deflated there: relay deflates it
    (tmp_path / "tree/w").mkdir(parents=True)
    (tmp_path / "tree/w/mod.py").write_bytes(data)
    (tmp_path / "tree/handler.py").write_bytes(b"import w.mod\n")
    plain = collect_tree(tmp_path / "tree")
    copied = [attrs.evolve(e, packed=packed) if e.path == "w/mod.py" else e for e in plain]

    deflated = write_zip(plain, tmp_path / "deflated.zip", epoch=EPOCH)
    stats = write_zip(copied, tmp_path / "copied.zip", epoch=EPOCH)

    assert stream_of(tmp_path / "copied.zip", "w/mod.py") == stream_of(wheel, "w/mod.py")  # the wheel's level 9
    assert stream_of(tmp_path / "deflated.zip", "w/mod.py") != stream_of(wheel, "w/mod.py")  # relay's level 6
    with zipfile.ZipFile(tmp_path / "copied.zip") as archive:
        assert archive.testzip() is None
        assert archive.read("w/mod.py") == CONTENT
    # The same files, whoever deflated them: the content digest, sizes and count agree.
    assert (stats.content_digest, stats.unzipped_size, stats.files) == (
        deflated.content_digest, deflated.unzipped_size, deflated.files)
    assert stats.sha256 != deflated.sha256
    assert write_zip(copied, tmp_path / "again.zip", epoch=EPOCH).sha256 == stats.sha256
    done = subprocess.run(["unzip", "-tq", str(tmp_path / "copied.zip")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def _damage(wheel: Path, how: str) -> tuple[bytes, dict]:
    """The wheel's bytes and ZipInfo changes for one way a member's stream is not the file its directory names."""
    raw = bytearray(wheel.read_bytes())
    with zipfile.ZipFile(wheel) as archive:
        info = archive.getinfo("w/mod.py")
    start = info.header_offset + 30 + len(info.filename.encode())
    if how == "stream bytes changed":
        raw[start + info.compress_size // 2] ^= 0xFF
        return bytes(raw), {}
    if how == "cut short":
        return bytes(raw[: start + info.compress_size // 2]), {}
    if how == "inflates to more than it says":
        return bytes(raw), {"file_size": info.file_size - 1}
    if how == "another CRC":
        return bytes(raw), {"CRC": info.CRC ^ 1}
    if how == "a stream that ends early":
        return bytes(raw), {"compress_size": info.compress_size + 3}
    if how == "no member where it says":
        return bytes(raw), {"header_offset": info.header_offset + 7}
    assert how == "bytes after the stream"
    return bytes(raw), {"compress_size": info.compress_size - 3}


@pytest.mark.parametrize("how", ["stream bytes changed", "cut short", "inflates to more than it says", "another CRC",
                                 "a stream that ends early", "no member where it says", "bytes after the stream"])
def test_a_member_whose_stream_is_not_the_file_its_directory_names_is_refused(tmp_path, how):
    """Looser readers stop at the size the directory says: the copy would then unzip to other bytes."""
    wheel = a_wheel(tmp_path, CONTENT)
    data, changes = _damage(wheel, how)

    with pytest.raises(BuildFailed, match="w/mod.py") as failure:
        unpacked(wheel, "w/mod.py", data, **changes)
    assert failure.value.hint and "wheel" in failure.value.hint


def test_more_members_than_sixteen_bits_count_get_zip64s_end_record(tmp_path):
    """A big layer can pass 65,535 files: the end record then says so in zip64's, which unzip and Python read."""
    wheel = a_wheel(tmp_path, b"X = 1\n")
    found = unpacked(wheel, "w/mod.py")
    assert found is not None
    data, packed = found
    (tmp_path / "mod.py").write_bytes(data)
    count = 65_537
    entries = [ZipEntry(f"pkg{i // 1000}/mod{i}.py", tmp_path / "mod.py", False, packed=packed) for i in range(count)]

    stats = write_zip(entries, tmp_path / "big.zip", epoch=EPOCH)

    assert stats.files == count
    with zipfile.ZipFile(tmp_path / "big.zip") as archive:
        names = archive.namelist()
        assert names == sorted(entry.path for entry in entries)
        assert archive.read(names[12345]) == data
    done = subprocess.run(["unzip", "-tq", str(tmp_path / "big.zip")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-500:] + done.stderr[-500:]


def test_entries_of_the_files_a_caller_wrote_are_what_collecting_the_tree_gives(tmp_path):
    src = make_tree(tmp_path / "src", reverse=False, mtime=EPOCH)
    files = {str(p): bool(p.stat().st_mode & 0o111) for p in src.rglob("*") if p.is_file()}
    for prefix in ("", "python"):
        assert entries_of(src, files, prefix=prefix) == collect_tree(src, prefix=prefix)
    with pytest.raises(BuildFailed, match="is not under"):
        entries_of(src / "pkg", files)
