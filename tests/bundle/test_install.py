"""Wheels are unpacked in-process with one open per file (`builder.bundle.install`).

Every file and folder made, read-only, the digests it reports true, a file two wheels ship refused,
console scripts written and executable, and a wheel that differs from its pin refused before anything
of it is written.
"""

from __future__ import annotations

import hashlib
import stat
import zlib
from pathlib import Path

import pytest
from bundle_helpers import make_wheel, sha256_of

from builder.bundle import install
from builder.errors import BuildFailed
from builder.lock.lockfile import LockedRequirement


def pinned(wheel: Path, name: str, version: str) -> tuple[LockedRequirement, Path]:
    return LockedRequirement(name=name, version=version, hashes=(f"sha256:{sha256_of(wheel)}",)), wheel


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(root).as_posix(): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
            for p in sorted(root.rglob("*")) if p.is_file()}


def many_files(count: int) -> dict[str, str]:
    return {f"deep/pkg{i % 37}/sub{i % 5}/mod{i}.py": f"VALUE = {i}\n" * (i % 50 + 1) for i in range(count)}


def test_every_file_is_written_read_only_and_its_reported_digest_is_true(tmp_path: Path) -> None:
    wheels = [pinned(make_wheel(tmp_path / "house", "big", "1.0", many_files(600)), "big", "1.0"),
              pinned(make_wheel(tmp_path / "house", "small", "2.0", {"small/__init__.py": "X = 1\n"}), "small", "2.0")]

    written = install.install(wheels, tmp_path / "out")

    files = tree(tmp_path / "out")
    assert len(files) == 600 + 1 + 2 * 3  # every file, and each wheel's METADATA, WHEEL and RECORD
    assert all(not mode & 0o222 for _, mode in files.values())  # read-only, as the check's tree keeps them
    assert {str(tmp_path / "out" / rel): hashlib.sha256(data).hexdigest() for rel, (data, _) in files.items()} == {
        path: what.sha256 for path, what in written.items()}
    record = (tmp_path / "out/big-1.0.dist-info/RECORD").read_text(encoding="utf-8")
    assert "deep/pkg0/sub0/mod0.py,sha256=" in record


def test_a_file_two_wheels_ship_is_refused(tmp_path: Path) -> None:
    one = make_wheel(tmp_path / "house", "one", "1.0", {"shared/util.py": "A = 1\n", **many_files(50)})
    two = make_wheel(tmp_path / "house", "two", "1.0", {"shared/util.py": "A = 2\n"})

    with pytest.raises(BuildFailed, match=r"two locked packages ship the same file: .*shared/util.py"):
        install.install([pinned(one, "one", "1.0"), pinned(two, "two", "1.0")], tmp_path / "out")


@pytest.mark.parametrize("member", ["../escaped.py", "pkg/../../escaped.py", "pkg/../../out2/escaped.py"])
def test_a_wheel_member_naming_a_path_outside_the_folder_is_refused(tmp_path: Path, member: str) -> None:
    """A member whose path climbs out of the install's folder (a crafted wheel) fails the install; nothing is
    written beside the folder, including in a sibling whose name starts like it (`out2` next to `out`)."""
    wheel = make_wheel(tmp_path / "house", "evil", "1.0", {"pkg/__init__.py": "", member: "X = 1\n"})

    with pytest.raises(BuildFailed, match="outside of the target directory"):
        install.install([pinned(wheel, "evil", "1.0")], tmp_path / "out")
    assert not list(tmp_path.glob("escaped.py")) and not (tmp_path / "out2").exists()


def test_a_wheel_that_is_not_the_pinned_one_writes_nothing(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "house", "big", "1.0", many_files(20))
    req, _ = pinned(wheel, "big", "1.0")
    wheel.write_bytes(wheel.read_bytes() + b"tampered")

    with pytest.raises(BuildFailed, match="hash mismatch for big==1.0"):
        install.install([(req, wheel)], tmp_path / "out")
    assert not any(p.is_file() for p in (tmp_path / "out").rglob("*"))


def test_console_scripts_are_written_before_installer_sets_their_mode(tmp_path: Path) -> None:
    """installer stats and chmods a generated script as soon as it is written: it must exist by then."""
    files = {**many_files(200), "tool/__init__.py": "def main():\n    return 0\n"}
    wheel = make_wheel(tmp_path / "house", "tool", "1.0", files)
    with_entry_points(wheel, "[console_scripts]\ntool = tool:main\nother = tool:main\n")

    install.install([pinned(wheel, "tool", "1.0")], tmp_path / "out")

    for name in ("tool", "other"):
        script = tmp_path / "out" / "bin" / name
        assert script.read_bytes().startswith(b"#!/var/lang/bin/python")
        assert stat.S_IMODE(script.stat().st_mode) & 0o111 == 0o111


def with_entry_points(wheel: Path, text: str) -> None:
    """Add entry_points.txt (and its RECORD row) to a wheel `make_wheel` made."""
    import base64
    import hashlib
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    dist_info = next(name.split("/")[0] for name in members if name.endswith(".dist-info/RECORD"))
    data = text.encode()
    members[f"{dist_info}/entry_points.txt"] = data
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    members[f"{dist_info}/RECORD"] += f"{dist_info}/entry_points.txt,sha256={digest},{len(data)}\n".encode()
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, content in sorted(members.items()):
            archive.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), content)


def test_each_python_source_gets_the_trees_one_mtime(tmp_path: Path) -> None:
    """What bytecode compiled ahead from the wheel says of its source: the trees' one mtime (and the same bytes)."""
    from builder.runtime.bytecode import SOURCE_MTIME

    wheel = make_wheel(tmp_path / "house", "big", "1.0", {**many_files(30), "big/data.json": "{}"})

    written = install.install([pinned(wheel, "big", "1.0")], tmp_path / "out")

    sources = [path for path in written if path.endswith(".py")]
    assert len(sources) == 30
    for path in sources:
        assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == written[path].sha256
        assert Path(path).stat().st_mtime == SOURCE_MTIME
    assert Path(next(p for p in written if p.endswith("data.json"))).stat().st_mtime != SOURCE_MTIME


def test_each_file_that_is_its_wheel_member_unchanged_says_where_its_deflate_stream_lies(tmp_path: Path) -> None:
    """What the zip copies instead of deflating again: members as they are; not what installer made or rewrote."""
    import zipfile

    files = {**many_files(40), "tool/__init__.py": "def main():\n    return 0\n", "big/stored.txt": "stored\n" * 50}
    wheel = make_wheel(tmp_path / "house", "tool", "1.0", files)
    with_entry_points(wheel, "[console_scripts]\ntool = tool:main\n")
    _restore_deflate(wheel, stored={"big/stored.txt"})

    written = install.install([pinned(wheel, "tool", "1.0")], tmp_path / "out")

    out = tmp_path / "out"
    packed = {Path(path).relative_to(out).as_posix(): what.packed for path, what in written.items()}
    assert packed["bin/tool"] is None  # made by installer
    assert packed["tool-1.0.dist-info/RECORD"] is None  # written by installer from the rows it made
    assert packed["big/stored.txt"] is None  # not deflated in the wheel: relay deflates it
    copied = {rel: where for rel, where in packed.items() if where is not None}
    assert set(copied) == {*many_files(40), "tool/__init__.py", "tool-1.0.dist-info/METADATA",
                           "tool-1.0.dist-info/WHEEL", "tool-1.0.dist-info/entry_points.txt"}
    raw = wheel.read_bytes()
    with zipfile.ZipFile(wheel) as archive:
        for rel, where in copied.items():
            info = archive.getinfo(rel)
            assert (where.wheel, where.data, where.compress_size, where.file_size, where.crc) == (
                wheel, raw, info.compress_size, info.file_size, info.CRC)
            installed = (out / rel).read_bytes()
            assert zlib.decompress(where.stream(), -15) == installed
            assert where.sha256 == written[str(out / rel)].sha256 == hashlib.sha256(installed).hexdigest()


def test_a_member_that_is_not_what_its_wheel_says_stops_the_install(tmp_path: Path) -> None:
    """A stream that inflates past the size the directory says: zipfile would stop there, the copy would not."""
    import zipfile

    wheel = make_wheel(tmp_path / "house", "big", "1.0", many_files(20))
    raw = bytearray(wheel.read_bytes())
    with zipfile.ZipFile(wheel) as archive:
        info = archive.getinfo("deep/pkg3/sub3/mod3.py")
    # The central directory's uncompressed size of that member, one byte short (zipfile still reads it).
    entry = raw.find(b"PK\x01\x02", raw.index(b"PK\x01\x02"))
    while raw[entry + 46 : entry + 46 + len(info.filename)] != info.filename.encode():
        entry = raw.find(b"PK\x01\x02", entry + 4)
    raw[entry + 24 : entry + 28] = (info.file_size - 1).to_bytes(4, "little")
    wheel.write_bytes(bytes(raw))

    with pytest.raises(BuildFailed, match="mod3.py") as failure:
        install.install([pinned(wheel, "big", "1.0")], tmp_path / "out")
    assert "wheel" in (failure.value.hint or "")


def _restore_deflate(wheel: Path, *, stored: set[str]) -> None:
    """Rewrite `wheel` with its members deflated, but `stored` (`with_entry_points` writes them stored)."""
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, content in sorted(members.items()):
            kind = zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED
            archive.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), content, compress_type=kind)
