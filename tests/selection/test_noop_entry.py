"""The no-op answered by the console script before click loads (`builder.entry`), and what it must leave to the
full command: other command lines, another environment, git's files elsewhere, an edit made while a build ran.

The project is the real-app layout of `test_noop_real_layout` (packages = ["app"], a git history).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from app_helpers import git
from test_noop_real_layout import ORDERS, STAMP, _append, answered_by_stamp, build, built_app, zip_state

from builder import entry
from builder.bundle import pipeline, stamp


@pytest.fixture
def built(tmp_path, wheelhouse, cache_dir, relay) -> Path:
    return built_app(tmp_path / "realapp", wheelhouse, relay, "packages")


def argv(root: Path, *args: str) -> list[str]:
    return ["-C", str(root), "build", *args]


def test_the_console_script_answers_an_unchanged_build_without_loading_click(built):
    relay_script = Path(sys.executable).parent / "relay"
    done = subprocess.run([str(relay_script), *argv(built, "--json", "--no-import-check")], capture_output=True,
                          text=True, check=True)
    assert answered_by_stamp(json.loads(done.stdout))
    probe = ("import sys; from builder.entry import answer; "
             f"text = answer({argv(built, '--json', '--no-import-check')!r}); "
             "print(text is not None, sorted(m for m in ('click', 'builder.config', 'pathspec', 'attrs') "
             "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split(maxsplit=1) == ["True", "[]\n"], done


def test_another_command_line_is_answered_once_the_command_has_answered_it(built, relay):
    human = argv(built, "--no-import-check")
    assert entry.answer(human) is None  # the stamp knows `--json --no-import-check` only
    first = relay(*human[2:], cwd=built)
    assert first.code == 0 and "Nothing changed" in first.stdout
    text = entry.answer(human)
    assert text is not None and text + "\n" == first.stdout
    assert entry.answer(argv(built, "--json", "--no-import-check")) is not None  # the first one still is


@pytest.mark.parametrize("args", [("--no-cache", "--no-import-check"), ("--explain", "orders"),
                                  ("--explain=orders",), ("--help",)])
def test_options_that_build_anyway_or_build_nothing_always_reach_the_command(built, relay, args):
    assert relay("build", *args, cwd=built).code == 0
    assert entry.answer(argv(built, *args)) is None


def test_a_function_named_differs_from_all_of_them(built, relay):
    assert entry.answer(argv(built, "orders", "--json", "--no-import-check")) is None
    doc = build(relay, built)  # all of them: still answered
    assert answered_by_stamp(doc)


@pytest.mark.parametrize("variable, value", [("SOURCE_DATE_EPOCH", "315532800"), ("RELAY_CACHE_DIR", "/elsewhere"),
                                             ("GIT_WORK_TREE", "/elsewhere")])
def test_an_environment_that_changes_what_a_build_reads_is_another_request(built, monkeypatch, variable, value):
    assert entry.answer(argv(built, "--json", "--no-import-check")) is not None
    monkeypatch.setenv(variable, value)
    assert entry.answer(argv(built, "--json", "--no-import-check")) is None


def test_with_git_dir_set_the_command_still_answers_from_a_fresh_selection(built, relay, monkeypatch):
    monkeypatch.setenv("GIT_DIR", str(built / ".git"))
    build(relay, built)  # a new request: built (from the cache), stamped without what git reads
    assert stamp.load(built / "dist")["looked"] is None
    assert entry.answer(argv(built, "--json", "--no-import-check")) is None
    assert answered_by_stamp(build(relay, built))  # the command selects again: the same files ship
    _append(ORDERS, "# edited\n")(built)
    assert not answered_by_stamp(build(relay, built))


@pytest.mark.parametrize("damage", ["truncated", "resealed-elsewhere", "another-projects"])
def test_a_damaged_or_foreign_stamp_answers_nothing(built, relay, tmp_path, wheelhouse, damage):
    path = built / STAMP
    if damage == "truncated":
        path.write_text(path.read_text()[:-40])
    elif damage == "resealed-elsewhere":  # a stamp whose seal no longer matches its content
        doc = json.loads(path.read_text())
        doc["argv"].append(["build"])
        path.write_text(json.dumps(doc))
    else:  # another checkout's stamp copied in: its config path is not this one's
        other = built_app(tmp_path / "other", wheelhouse, relay, "packages")
        path.write_bytes((other / STAMP).read_bytes())
    assert entry.answer(argv(built, "--json", "--no-import-check")) is None
    assert not answered_by_stamp(build(relay, built))
    assert answered_by_stamp(build(relay, built))


def test_an_edit_made_while_a_build_runs_is_built_by_the_next_one(built, relay, monkeypatch):
    """The stamp is taken before the build reads anything: an edit racing the build is never skipped. Repeated,
    with the edit landing at different moments of the build."""
    real = pipeline.build_project
    for attempt in range(6):
        marker = f"# edit {attempt}\n"
        _append(ORDERS, "# before\n")(built)

        def racing(*args, _marker=marker, _attempt=attempt, **kwargs):
            if _attempt % 2:
                _append(ORDERS, _marker)(built)  # before the build reads the file
                return real(*args, **kwargs)
            result = real(*args, **kwargs)
            _append(ORDERS, _marker)(built)  # after it read the file, before the stamp is written
            return result

        monkeypatch.setattr(pipeline, "build_project", racing)
        assert not answered_by_stamp(build(relay, built))
        monkeypatch.setattr(pipeline, "build_project", real)
        doc = build(relay, built)
        if attempt % 2 == 0:
            assert not answered_by_stamp(doc), f"attempt {attempt}: the edit made during the build was skipped"
        assert marker.strip().encode() in zip_state(built)[ORDERS], attempt
        assert answered_by_stamp(build(relay, built))


def test_too_much_to_look_at_leaves_it_to_the_command(built, relay, monkeypatch):
    """A huge git-ignored folder inside a shipped one: past `MAX_LOOKED` paths the stamp notes none of them, the
    entry never answers, and the command selects again (the same answer, and an edit still rebuilds)."""
    monkeypatch.setattr(stamp, "MAX_LOOKED", 3)
    _append(ORDERS, "# edited\n")(built)
    assert not answered_by_stamp(build(relay, built))
    assert stamp.load(built / "dist")["looked"] is None
    assert entry.answer(argv(built, "--json", "--no-import-check")) is None
    assert answered_by_stamp(build(relay, built))
    _append(ORDERS, "# again\n")(built)
    assert not answered_by_stamp(build(relay, built))


def test_a_dist_that_cannot_be_written_still_gets_the_answer(built, relay, monkeypatch):
    """The command notes what it selected again in the stamp; when dist/ is not writable it answers all the same."""
    _append("app/handlers/worker.log", "started\n")(built)

    def unwritable(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(built / STAMP))

    monkeypatch.setattr(stamp, "_save", unwritable)
    run = relay("build", "--json", "--no-import-check", cwd=built)
    assert run.code == 0 and answered_by_stamp(run.json()), run


def test_a_new_git_ignored_file_is_answered_by_selecting_again_then_at_once(built, relay):
    _append("app/handlers/worker.log", "started\n")(built)  # app/handlers/ changed: the entry cannot tell
    assert entry.answer(argv(built, "--json", "--no-import-check")) is None
    assert answered_by_stamp(build(relay, built))  # the command selects again: nothing new ships
    assert entry.answer(argv(built, "--json", "--no-import-check")) is not None  # and noted it


def test_a_commit_or_a_staged_untracked_file_is_not_answered(built, relay):
    _append("app/common/tax.py", "RATE = 0.2\n")(built)
    assert not answered_by_stamp(build(relay, built))  # shipped, untracked: the manifest is dirty
    git(built, "add", "app/common/tax.py")  # staged: the manifest's dirty flag stays (differs from HEAD)
    assert answered_by_stamp(build(relay, built))
    git(built, "commit", "-q", "-m", "tax")  # committed: clean, and a new commit
    doc = build(relay, built)
    assert not answered_by_stamp(doc)
    manifest = json.loads((built / "dist" / "orders.manifest.json").read_text())
    assert manifest["git"]["dirty"] is False and manifest["git"]["commit"] == git(built, "rev-parse", "HEAD").strip()


def test_the_stamp_is_readable_like_any_build_output(built):
    assert oct((built / STAMP).stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_racing_builds_and_an_edit_during_them_converge(built, relay):
    """One or two `relay build` processes at once, a shipped file edited while they run (at a different moment
    each round): they succeed, and the next build never skips the edit. Repeated enough to catch a 1-in-5 race."""
    import random

    relay_script = str(Path(sys.executable).parent / "relay")
    rounds = random.Random(13)
    for attempt in range(14):
        _append(ORDERS, f"# before {attempt}\n")(built)  # so that the builds below build, not answer from the stamp
        runs = [subprocess.Popen([relay_script, *argv(built, "--json", "--no-import-check")], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(1 + attempt % 2)]
        time.sleep(rounds.uniform(0.1, 1.2))  # a build here takes about a second: before, during or after it
        _append(ORDERS, f"# edit {attempt}\n")(built)
        for run in runs:
            out, err = run.communicate(timeout=300)
            assert run.returncode == 0, (attempt, out, err)
        build(relay, built)  # a build or the stamp's answer: either way the zip must hold the edit now
        assert f"# edit {attempt}".encode() in zip_state(built)[ORDERS], f"round {attempt}: the edit was skipped"
        assert answered_by_stamp(build(relay, built)), attempt
