"""Stripping host files from a pip --target folder and rewriting RECORD, on a fabricated tree."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
from pathlib import Path

from builder.bundle.strip import record_hash, rewrite_records, strip_installed

DIST = "demo_pkg-1.0.dist-info"

KEPT = {
    "demo_pkg/__init__.py": b"from .core import run\n",
    "demo_pkg/core.py": b"def run():\n    return 42\n",
    "demo_pkg/data,with comma.txt": b"quoted in csv\n",
    "demo_pkg/sub/x.lock": b"not a top-level tool lock\n",
    "demo_pkg/native.so": b"\x7fELF fake",
    f"{DIST}/METADATA": b"Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n",
    f"{DIST}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    f"{DIST}/entry_points.txt": b"[console_scripts]\ndemo = demo_pkg:run\n",
    "unlisted.py": b"# installed by hand, not in any RECORD\n",
}
HOST = {
    "bin/demo": b"#!/home/ci/build/.venv/bin/python\nimport demo_pkg\n",
    ".lock": b"",
    "demo_pkg/__pycache__/__init__.cpython-312.pyc": b"\x00bytecode",
    "demo_pkg/__pycache__/core.cpython-312.pyc": b"\x00bytecode",
    "demo_pkg/sub/__pycache__/y.cpython-312.pyc": b"\x00bytecode",
    "demo_pkg/stray.pyc": b"\x00bytecode",
    "demo_pkg/old.pyo": b"\x00bytecode",
    f"{DIST}/INSTALLER": b"pip\n",
    f"{DIST}/REQUESTED": b"",
    f"{DIST}/direct_url.json": b'{"url": "file:///home/ci/wheels/demo_pkg-1.0-py3-none-any.whl"}',
}


def fabricate(target: Path) -> None:
    for rel, content in {**KEPT, **HOST}.items():
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).write_bytes(content)
    rows = [(rel, "sha256=stale", "1") for rel in [*KEPT, *HOST] if rel != "unlisted.py"]
    rows += [
        ("../../bin/demo", "sha256=stale", "9"),  # pip's path for a script, outside target
        ("/home/ci/build/abs.py", "sha256=stale", "9"),
        ("demo_pkg/deleted.py", "sha256=stale", "9"),
        (f"{DIST}/RECORD", "", ""),
    ]
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)  # as pip writes it: excel dialect, CRLF
    (target / DIST / "RECORD").write_text(buffer.getvalue(), encoding="utf-8", newline="")


def strip_host_files(target: Path) -> set[str]:
    """`strip_installed` told of every file under `target`, as relay's installer tells it; the files kept."""
    return strip_installed(target, [str(p) for p in target.rglob("*") if p.is_file()])


def expected_hash(content: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()


def test_strip_removes_host_files_only(tmp_path):
    fabricate(tmp_path)
    (tmp_path / "only_bytecode/deeper").mkdir(parents=True)
    (tmp_path / "only_bytecode/deeper/gone.pyc").write_bytes(b"\x00bytecode")

    kept = strip_host_files(tmp_path)

    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert left == sorted([*KEPT, f"{DIST}/RECORD"])
    assert kept == {str(tmp_path / rel) for rel in left}
    assert not (tmp_path / "demo_pkg" / "__pycache__").exists() and not (tmp_path / "bin").exists()
    # A folder left empty is gone with its empty parents (it could import as a namespace package).
    assert not (tmp_path / "only_bytecode").exists()
    assert (tmp_path / "demo_pkg/sub").is_dir()
    assert strip_host_files(tmp_path) == kept  # nothing left to strip


def test_strip_keeps_marker_names_outside_dist_info(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "INSTALLER").write_text("a data file named like a marker")
    (tmp_path / "pkg" / "bin").mkdir()
    (tmp_path / "pkg" / "bin" / "helper").write_text("not top-level bin/")
    assert strip_host_files(tmp_path) == {str(tmp_path / "pkg/INSTALLER"), str(tmp_path / "pkg/bin/helper")}
    assert (tmp_path / "pkg" / "INSTALLER").is_file()
    assert (tmp_path / "pkg" / "bin" / "helper").is_file()


def test_rewrite_records(tmp_path):
    fabricate(tmp_path)
    strip_host_files(tmp_path)
    rewrite_records(tmp_path)
    shipped = {rel: content for rel, content in KEPT.items() if rel != "unlisted.py"}
    rows = sorted(
        [(rel, expected_hash(content), str(len(content))) for rel, content in shipped.items()]
        + [(f"{DIST}/RECORD", "", "")],
        key=lambda row: row[0].encode(),
    )
    expected = "".join(
        ",".join(f'"{field}"' if "," in field else field for field in row) + "\n" for row in rows
    )
    assert (tmp_path / DIST / "RECORD").read_bytes() == expected.encode()
    assert b"\r" not in (tmp_path / DIST / "RECORD").read_bytes()


def test_rewrite_records_is_idempotent_and_independent_of_the_old_record(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for target in (one, two):
        fabricate(target)
        strip_host_files(target)
    # A differently ordered, LF-terminated RECORD with other stale values gives the same result.
    record = two / DIST / "RECORD"
    lines = record.read_text(encoding="utf-8").splitlines()
    record.write_text("\n".join(reversed(lines)).replace("stale", "other") + "\n", encoding="utf-8")
    rewrite_records(one)
    first = (one / DIST / "RECORD").read_bytes()
    rewrite_records(one)
    assert (one / DIST / "RECORD").read_bytes() == first
    rewrite_records(two)
    assert (two / DIST / "RECORD").read_bytes() == first


def test_rewrite_records_in_a_layer_layout(tmp_path):
    # The pipeline may strip python/ of a layer: RECORD paths stay relative to the dist-info's folder.
    target = tmp_path / "python"
    fabricate(target)
    strip_host_files(target)
    rewrite_records(tmp_path)
    text = (target / DIST / "RECORD").read_text(encoding="utf-8")
    assert "\ndemo_pkg/__init__.py,sha256=" in text
    assert "python/" not in text


def test_record_hash_matches_the_wheel_spec(tmp_path):
    (tmp_path / "f").write_bytes(b"hello")
    # urlsafe base64 of sha256(b"hello"), padding stripped.
    assert record_hash(tmp_path / "f") == "sha256=LPJNul-wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ"


def test_a_fresh_record_keeps_its_rows_and_gives_the_bytes_a_full_rehash_gives(tmp_path):
    """After relay's installer (rows = the written bytes' sha256 and size), the rows are not hashed again."""
    one, two = tmp_path / "one", tmp_path / "two"
    for target in (one, two):
        fabricate(target)
        strip_host_files(target)
        rewrite_records(target)  # the rows an installer would have written: true hashes and sizes
    record = two / DIST / "RECORD"
    # A row without a hash (as RECORD's own) is still hashed; one with both fields is taken as written.
    text = record.read_text(encoding="utf-8").replace(f"{DIST}/WHEEL,sha256=", f"{DIST}/WHEEL,,#")
    record.write_text(text, encoding="utf-8")

    rewrite_records(one)
    rewrite_records(two, fresh=True)

    assert (two / DIST / "RECORD").read_bytes() == (one / DIST / "RECORD").read_bytes()
    # Taken as written: a row claiming other bytes is kept in fresh mode (which is why only the installer's own
    # RECORDs may be rewritten that way), and hashed again otherwise.
    stale = (two / DIST / "RECORD").read_text(encoding="utf-8").replace(expected_hash(KEPT["demo_pkg/core.py"]),
                                                                         "sha256=stale")
    (two / DIST / "RECORD").write_text(stale, encoding="utf-8")
    rewrite_records(two, fresh=True)
    assert "sha256=stale" in (two / DIST / "RECORD").read_text(encoding="utf-8")
    rewrite_records(two)
    assert (two / DIST / "RECORD").read_bytes() == (one / DIST / "RECORD").read_bytes()


def test_records_rewritten_from_the_files_the_installer_names_match_a_walk(tmp_path):
    """Told which files remain (relay's installer), RECORDs are found and rows kept without walking or stat'ing."""
    one, two = tmp_path / "one", tmp_path / "two"
    for target in (one, two):
        fabricate(target)
    strip_host_files(one)
    rewrite_records(one)
    remaining = strip_host_files(two)

    rewrite_records(two, files=remaining)

    assert (two / DIST / "RECORD").read_bytes() == (one / DIST / "RECORD").read_bytes()
    (two / "demo_pkg/core.py").unlink()  # a file the caller did not say is gone: the list is believed
    rewrite_records(two, fresh=True, files=remaining)
    assert "demo_pkg/core.py" in (two / DIST / "RECORD").read_text(encoding="utf-8")
