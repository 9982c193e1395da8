"""Every file `relay build` writes into dist/ is readable like any build output: 0666 & ~umask (issue 13, item 5).

Staged through a temp file and renamed, a file used to keep mkstemp's 0600, so
another uid (a CI container, the web server serving dist/) could not read the
zips relay just built. The umask decides, as for `cp` or `zip`: 0644 under
022, 0600 under 077 (a user who asks for private files gets them).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from builder import fsutil


@pytest.fixture
def umask():
    """Set the process umask for one test, and put the old one back."""
    saved = os.umask(0o022)
    yield os.umask
    os.umask(saved)


def modes(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)],
                         ids=["umask 022", "umask 077", "umask 002"])
def test_every_file_a_build_writes_into_dist_follows_the_umask(tiny_project, relay, umask, mask, expected):
    umask(mask)
    run = relay("build", "--json", "--no-import-check", cwd=tiny_project)
    assert run.code == 0, run
    written = modes(tiny_project / "dist")
    kinds = {name.rsplit(".", 1)[-1] for name in written}
    assert {"zip", "json"} <= kinds and ".relay-build.json" in written and "index.json" in written, written
    assert {name: mode for name, mode in written.items() if mode != expected} == {}, f"want {expected:o}"
    assert not [name for name in written if name.endswith(".tmp")], written  # no staging file left


def test_a_rebuilt_bundle_replacing_an_old_one_gets_the_umask_mode(tiny_project, relay, umask):
    umask(0o022)
    assert relay("build", "--no-import-check", cwd=tiny_project).code == 0
    handler = tiny_project / "functions/hello/hello/app.py"
    handler.write_text(handler.read_text() + "\n# edited\n")
    assert relay("build", "--no-import-check", cwd=tiny_project).code == 0
    assert set(modes(tiny_project / "dist").values()) == {0o644}


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600)], ids=["umask 022", "umask 077"])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    source = tmp_path / "source.bin"
    source.write_bytes(b"zip bytes")
    os.chmod(source, 0o600)  # a private source does not make a private copy: the copy is a new file
    fsutil.atomic_copy(source, tmp_path / "copy.zip")
    fsutil.atomic_write_text(tmp_path / "index.json", "{}\n")
    fsutil.atomic_write_text(tmp_path / "index.json", "{}\n")  # replacing an existing file
    assert stat.S_IMODE((tmp_path / "copy.zip").stat().st_mode) == expected
    assert stat.S_IMODE((tmp_path / "index.json").stat().st_mode) == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.zip", "index.json", "source.bin"]
