"""The no-op fast path on real layouts: what keeps it, what must break it (issue 13, item 3).

A project laid out like real ones (`app/` package, docs/, tests/, infrastructure/, a
.venv, node_modules, a git history) built with `source = "."` and with
`packages = ["app"]`. After a first build, a second one is answered by the stamp
(`seconds == 0.0`, nothing rebuilt). Then one edit: what is never shipped (dist/,
.git, excluded or ignored files) must keep the no-op; what decides a bundle (a
shipped file, its mode, the lock, relay.toml, relay's version, git's view of a
shipped file) must rebuild. A stale no-op, one that skips a real change, is the
failure these tests exist to catch, so the edits that must rebuild are made the
sneaky ways: same size, mtime put back, the stamp file rewritten.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from app_helpers import commit_all, git, make_real_app, remove_secrets, source_dot_config

from builder.bundle import stamp, watch

ORDERS = "app/handlers/orders.py"
STAMP = Path("dist") / stamp.STAMP_FILE


def make_app(root: Path, wheelhouse, layout: str) -> Path:
    """The real-app layout with a git history; `dist/` is not git-ignored (many projects don't)."""
    config = source_dot_config([".env", "relay.key"]) if layout == "source-dot" else None
    make_real_app(root, wheelhouse, config=config)
    remove_secrets(root)
    gitignore = root / ".gitignore"
    gitignore.write_text(gitignore.read_text().replace("dist/\n", ""))
    shutil.rmtree(root / "dist")
    git(root, "init", "-q", "-b", "main")
    commit_all(root)
    return root


def build(relay, root: Path) -> dict:
    run = relay("build", "--json", "--no-import-check", cwd=root)
    assert run.code == 0, run
    return run.json()


def answered_by_stamp(doc: dict) -> bool:
    return doc["nothing_changed"] is True and doc["seconds"] == 0.0


def built_app(root: Path, wheelhouse, relay, layout: str) -> Path:
    """A real-layout project built once, whose second build is the stamp's answer."""
    make_app(root, wheelhouse, layout)
    first = build(relay, root)
    assert not answered_by_stamp(first)
    assert answered_by_stamp(build(relay, root)), "a plain rebuild must be a no-op"
    return root


@pytest.fixture(params=["source-dot", "packages"])
def built(request, tmp_path, wheelhouse, cache_dir, relay) -> Path:
    """Built, in both layouts: for the tests where what ships decides."""
    return built_app(tmp_path / "realapp", wheelhouse, relay, request.param)


@pytest.fixture
def built_dot(tmp_path, wheelhouse, cache_dir, relay) -> Path:
    """Built, `source = "."` only: for the tests of the stamp itself."""
    return built_app(tmp_path / "realapp", wheelhouse, relay, "source-dot")


def _append(rel: str, text: str = "# more\n") -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)
    return edit


def _git(*args: str) -> Callable[[Path], None]:
    def run(root: Path) -> None:
        git(root, *args)
    return run


KEEPS_NO_OP: dict[str, Callable[[Path], None]] = {
    "a file written into dist/": _append("dist/notes.txt", "release notes\n"),
    "a folder written into dist/": _append("dist/scratch/out.json", "{}\n"),
    "a file written into .git": _append(".git/description", "my repo\n"),
    "a branch (.git only)": _git("branch", "feature"),
    "a tag (.git only)": _git("tag", "v1"),
    "git gc": _git("gc", "-q"),
    "a tracked, excluded doc edited": _append("docs/index.md"),
    "an untracked, excluded test added": _append("tests/test_new.py", "def test_new():\n    pass\n"),
    "an excluded infrastructure file edited": _append("infrastructure/stack.py"),
    "... and staged": _git("add", "infrastructure/stack.py"),
    "the README edited": _append("README.md", "more docs\n"),
    "a git-ignored log in the package edited": _append("app/server.log", "GET /billing 200\n"),
    "a git-ignored settings file in the package edited": _append("app/local_settings.py", "DEBUG = False\n"),
    "a file in .venv": _append(".venv/lib/python3.12/site-packages/boto3/__init__.py", "# upgraded\n"),
    "a file in node_modules": _append("node_modules/aws-cdk-lib/index.js", "// upgraded\n"),
    "bytecode in __pycache__": _append("app/__pycache__/orders.cpython-312.pyc", "xx"),
    "a shipped file touched, content the same": lambda root: os.utime(root / ORDERS),
    "a git-ignored log created in the package": _append("app/handlers/worker.log", "started\n"),
    "an excluded file created in the package": _append("app/common/NOTES.md", "todo\n"),
    "git status run (it rewrites the index)": _git("status", "--porcelain"),
    "a folder of ignored logs created in the package": _append("app/cache/today.log", "GET / 200\n"),
}


def test_what_is_never_shipped_keeps_the_no_op(built, relay):
    for what, edit in KEEPS_NO_OP.items():  # one after another on one project: each build is a no-op
        edit(built)
        doc = build(relay, built)
        if not answered_by_stamp(doc):
            # a touch may leave the fast path once (the build then decides by content), never twice
            assert all(b["status"] == "unchanged" for b in doc["bundles"]), (what, doc)
            doc = build(relay, built)
        assert answered_by_stamp(doc), f"{what}: not a no-op"


def _flip_last_letter(data: bytes) -> bytes:
    """The same bytes with the last letter in the other case: same size, new content."""
    at = max(i for i, byte in enumerate(data) if bytes([byte]).isalpha())
    return data[:at] + bytes([data[at] ^ 0x20]) + data[at + 1:]


def _same_size_same_mtime(root: Path) -> None:
    """Change one byte of a shipped file and put its mtime back, as a fast script or a restore does."""
    path = root / ORDERS
    before = path.stat()
    path.write_bytes(_flip_last_letter(path.read_bytes()))
    assert path.stat().st_size == before.st_size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def _replaced_keeping_mtime(root: Path) -> None:
    """A new file moved over a shipped one with the old one's mtime (rsync -a, tar, cp -p)."""
    path = root / ORDERS
    before = path.stat()
    staged = path.with_name("orders.py.new")
    staged.write_bytes(_flip_last_letter(path.read_bytes()))
    os.utime(staged, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(staged, path)


def _lock_edited(root: Path) -> None:
    lock = root / "requirements.txt"
    lock.write_text(lock.read_text() + "# relocked\n")


def _stamp_rewritten_after_edit(root: Path) -> None:
    """Edit a shipped file, then put the stamp back byte for byte with a new mtime (a restored dist/)."""
    saved = (root / STAMP).read_bytes()
    _append(ORDERS, "# edited\n")(root)
    (root / STAMP).write_bytes(saved)


def _stamp_inputs_replaced(root: Path) -> None:
    """Edit a shipped file, then write the stamp's `inputs` over with anything: relay must not trust it."""
    _append(ORDERS, "# edited\n")(root)
    doc = json.loads((root / STAMP).read_text())
    doc["inputs"] = "0" * 64
    (root / STAMP).write_text(json.dumps(doc))


def _stamp_from_before_restored(root: Path, relay) -> None:
    """A stamp saved before an edit and a rebuild, copied back over the new one."""
    saved = (root / STAMP).read_bytes()
    _append(ORDERS, "# first edit\n")(root)
    build(relay, root)
    _append(ORDERS, "# second edit\n")(root)
    (root / STAMP).write_bytes(saved)


REBUILDS: dict[str, Callable[..., None]] = {  # in this order: the first finds every shipped file clean in git
    "a shipped file untracked (the manifest turns dirty)": _git("rm", "-q", "--cached", "app/handlers/__init__.py"),
    "a shipped file edited": _append(ORDERS, "# edited\n"),
    "a shipped file edited, same size and mtime": _same_size_same_mtime,
    "a shipped file replaced, mtime kept": _replaced_keeping_mtime,
    "a shipped file added": _append("app/common/tax.py", "RATE = 0.2\n"),
    "a shipped file removed": lambda root: (root / "app/common/money.py").unlink(),
    "a shipped file made executable": lambda root: os.chmod(root / ORDERS, 0o755),
    "a git-ignored file un-ignored": lambda root: (root / ".gitignore").write_text(
        (root / ".gitignore").read_text().replace("local_settings.py\n", "")),
    "a shipped file git-ignored": _append(".gitignore", "app/common/tax.py\n"),
    "a commit (the manifest's commit)": _git("commit", "-q", "--allow-empty", "-m", "empty"),
    "a package folder's __init__.py removed": lambda root: (root / "app/handlers/billing/__init__.py").unlink(),
    "the lock edited": _lock_edited,
    "relay.toml edited": _append("relay.toml", "# a comment\n"),
    "the stamp rewritten after an edit": _stamp_rewritten_after_edit,
    "the stamp's inputs replaced after an edit": _stamp_inputs_replaced,
}


REACH_THE_ZIP = {"a shipped file edited", "a shipped file edited, same size and mtime", "a shipped file replaced, mtime kept",
                 "the stamp rewritten after an edit", "the stamp's inputs replaced after an edit"}


def test_what_decides_a_bundle_rebuilds(built, relay):
    for what, edit in REBUILDS.items():  # one after another on one project, each from a no-op state
        shipped_before = zip_state(built)
        edit(built)
        doc = build(relay, built)
        assert not answered_by_stamp(doc), f"a stale no-op: the stamp answered for {what}"
        assert doc["seconds"] > 0.0
        if what in REACH_THE_ZIP:
            assert zip_state(built)[ORDERS] != shipped_before[ORDERS], f"{what}: the edit must reach the zip"
        assert answered_by_stamp(build(relay, built)), f"{what}: the build after it is a no-op again"


def test_a_module_added_to_a_folder_git_reports_whole_as_ignored_ships(built, relay):
    """git names a folder holding only ignored files as one ignored folder, and the selection leaves it out whole
    without listing it: a module added there must still be seen."""
    _append("app/cache/today.log", "GET / 200\n")(built)
    assert "app/cache/\n" in git(built, "ls-files", "--others", "--ignored", "--exclude-standard", "--directory")
    build(relay, built)
    assert answered_by_stamp(build(relay, built))
    _append("app/cache/rates.py", "RATE = 2\n")(built)
    assert not answered_by_stamp(build(relay, built))
    assert "app/cache/rates.py" in zip_state(built)


def test_a_stamp_from_before_an_edit_copied_back_does_not_skip_it(built_dot, relay):
    _stamp_from_before_restored(built_dot, relay)
    doc = build(relay, built_dot)
    assert not answered_by_stamp(doc)
    assert b"# second edit" in zip_state(built_dot)[ORDERS]


def test_a_requirement_added_refuses_the_stale_lock_instead_of_a_no_op(built_dot, relay):
    _append("requirements.in", "money\n")(built_dot)
    run = relay("build", "--json", "--no-import-check", cwd=built_dot)
    assert run.code == 6 and "LockStale" in run.stdout, run


def test_a_secret_added_to_the_shipped_package_is_refused_not_skipped(built_dot, relay):
    _append("app/handlers/.env", "DATABASE_URL=postgres://admin:hunter2@db/orders\n")(built_dot)
    run = relay("build", "--json", "--no-import-check", cwd=built_dot)
    assert run.code == 4 and "app/handlers/.env" in run.stdout + run.stderr, run


def test_relay_upgraded_rebuilds(built_dot, relay, monkeypatch):
    monkeypatch.setattr(stamp, "__version__", "99.0.0")
    assert not answered_by_stamp(build(relay, built_dot))


def test_a_broken_stamp_rebuilds(built_dot, relay):
    (built_dot / STAMP).write_text("{not json")
    doc = build(relay, built_dot)
    assert not answered_by_stamp(doc)
    assert answered_by_stamp(build(relay, built_dot))


def zip_state(root: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(root / "dist" / "orders.zip") as archive:
        return {name: archive.read(name) for name in archive.namelist() if name.startswith("app/")}


def test_metadata_alone_catches_an_edit_with_its_mtime_put_back(built_dot, relay, monkeypatch):
    """With content never hashed (no racy window), ctime and the inode still see the edit."""
    monkeypatch.setattr(watch, "RACY_NS", -(10**18))  # "modified after 2001 + 30 years": never racy
    build(relay, built_dot)  # the stamp taken again, now without content
    assert answered_by_stamp(build(relay, built_dot))
    for what, edit in (("same size and mtime", _same_size_same_mtime), ("replaced, mtime kept", _replaced_keeping_mtime)):
        before = zip_state(built_dot)[ORDERS]
        edit(built_dot)
        assert not answered_by_stamp(build(relay, built_dot)), what
        assert zip_state(built_dot)[ORDERS] != before, what


def test_a_recently_modified_file_counts_by_content(built_dot, monkeypatch):
    """A file written just before the stamp was taken could change again within one timestamp tick with every
    stat field the same (git's racy clean): such a file counts by content. Shown with lstat made blind."""
    path = built_dot / ORDERS
    frozen = path.lstat()
    taken = max(frozen.st_mtime_ns, frozen.st_ctime_ns)  # as the file was written: within the racy window
    later = taken + 10 * watch.RACY_NS  # long after it: outside
    near, far = watch.take([str(path)], taken), watch.take([str(path)], later)
    real_lstat = os.lstat
    monkeypatch.setattr(os, "lstat", lambda p, *a, **k: frozen if str(p) == str(path) else real_lstat(p, *a, **k))
    assert not watch.touched(near) and not watch.touched(far)
    path.write_bytes(_flip_last_letter(path.read_bytes()))
    assert watch.touched(near)  # seen, by content
    # outside the window a change no stat field shows would go unseen: what the window is for
    assert not watch.touched(far)
