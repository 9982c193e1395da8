"""`relay lock --check`, target selection, empty inputs and output normalising (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lock_helpers import make_project, relay

from builder.config import load_project
from builder.errors import LockStale, NotFound
from builder.lock.lockfile import LockHeader, input_sha256, read_lock, with_header
from builder.lock.resolve import lock_project, normalise
from builder.lock.resolvers import uv_platform
from builder.lock.targets import lock_targets

SIX = "six==1.17.0 \\\n    --hash=sha256:" + "4" * 64 + "\n    # via -r functions/api/requirements.in\n"


def write_valid_lock(in_path: Path, runtime: str = "python3.12") -> Path:
    lock = in_path.with_suffix(".txt")
    lock.write_text(with_header(SIX, LockHeader(input_sha256(in_path), runtime)), encoding="utf-8")
    return lock


def test_check_reports_ok_missing_and_stale(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", function_in="six\n", layer_in="idna\n")
    write_valid_lock(root / "functions/api/requirements.in")
    result = lock_project(load_project(root / "relay.toml"), check=True)
    statuses = {o.target.label: o.status for o in result.outcomes}
    assert statuses == {"function api": "ok", "layer common": "missing"}
    with pytest.raises(LockStale, match="layers/common/requirements.txt"):
        result.raise_for_check()

    (root / "functions/api/requirements.in").write_text("six\nidna\n", encoding="utf-8")
    result = lock_project(load_project(root / "relay.toml"), ["api"], check=True)
    assert [(o.status, o.reason) for o in result.outcomes] == [
        ("stale", "the .in file (or a file it includes) changed")]
    assert json.loads(json.dumps(result.to_json()))["ok"] is False


def test_check_is_stale_when_the_runtime_changed(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", runtime="python3.13")
    write_valid_lock(root / "functions/api/requirements.in", runtime="python3.12")
    result = lock_project(load_project(root / "relay.toml"), check=True)
    assert result.outcomes[0].status == "stale"
    assert "python3.12" in result.outcomes[0].reason and "python3.13" in result.outcomes[0].reason


def test_check_is_stale_for_a_lock_without_hashes(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    in_path = root / "functions/api/requirements.in"
    in_path.with_suffix(".txt").write_text(
        with_header("six==1.17.0\n", LockHeader(input_sha256(in_path), "python3.12")), encoding="utf-8")
    outcome = lock_project(load_project(root / "relay.toml"), check=True).outcomes[0]
    assert outcome.status == "stale" and "no --hash" in outcome.reason


def test_check_through_the_cli_exits_6_when_stale_and_0_when_ok(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    missing = relay("lock", "--check", cwd=root)
    assert missing.returncode == 6, missing.stderr
    assert "functions/api/requirements.txt (missing" in missing.stderr
    assert "hint: Run `relay lock`" in missing.stderr

    write_valid_lock(root / "functions/api/requirements.in")
    ok = relay("lock", "--check", "--json", cwd=root)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["locks"][0]["status"] == "ok"

    (root / "functions/api/requirements.in").write_text("six<2\n", encoding="utf-8")
    stale = relay("lock", "--check", cwd=root)
    assert stale.returncode == 6
    assert "stale" in stale.stdout and "stale" in stale.stderr
    as_json = relay("lock", "--check", "--json", cwd=root)
    assert as_json.returncode == 6
    assert json.loads(as_json.stdout)["locks"][0]["status"] == "stale"  # one document, not two


def test_check_writes_nothing(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    assert relay("lock", "--check", cwd=root).returncode == 6
    assert not (root / "functions/api/requirements.txt").exists()


def test_unknown_name_lists_the_known_ones(tmp_path: Path) -> None:
    project = load_project(make_project(tmp_path / "p", layer_in="idna\n") / "relay.toml")
    with pytest.raises(NotFound) as caught:
        lock_targets(project, ["nope"])
    assert caught.value.exit_code == 12  # unknown names: one code in every command
    assert "'nope'" in caught.value.message
    assert "api, common" in caught.value.hint


def test_a_layer_and_a_function_sharing_a_name_are_both_locked(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", layer_in="# none\n")
    config = (root / "relay.toml").read_text(encoding="utf-8").replace("[layers.common]", "[layers.api]")
    (root / "relay.toml").write_text(config, encoding="utf-8")
    targets = lock_targets(load_project(root / "relay.toml"), ["api"])
    assert sorted(t.label for t in targets) == ["function api", "layer api"]


def test_an_in_file_with_only_comments_gets_an_empty_lock_with_the_header(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", function_in="# nothing yet\n\n", layer_in="# none either\n")
    result = lock_project(load_project(root / "relay.toml"), resolver="pip-tools")
    assert {o.status for o in result.outcomes} == {"locked"}
    lock_file = root / "functions/api/requirements.txt"
    assert lock_file.read_text(encoding="utf-8") == (
        f"# relay-lock: input-sha256={input_sha256(root / 'functions/api/requirements.in')} runtime=python3.12\n")
    lock = read_lock(lock_file)
    assert lock.requirements == () and lock.runtime == "python3.12"
    again = lock_project(load_project(root / "relay.toml"))
    assert {o.status for o in again.outcomes} == {"unchanged"}
    assert lock_project(load_project(root / "relay.toml"), check=True).problems == ()


def test_normalise_makes_paths_relative_and_drops_index_options(tmp_path: Path) -> None:
    root = tmp_path / "somewhere" / "proj"
    text = (
        "--extra-index-url file:///opt/pypi/simple\n"
        "--find-links /opt/wheels\r\n"
        "six==1.17.0 \\\n"
        "    --hash=sha256:" + "4" * 64 + "\n"
        f"    # via -r {root}/functions/api/requirements.in\n"
        "torch==2.0 \\\n    --hash=sha256:" + "5" * 64 + "\n"
        "    # via\n    #   -c /etc/xdg/pip/constraints.txt\n"
        f"    #   -r {root}/layers/common/requirements.in\n"
    )
    out = normalise(text, root)
    assert str(tmp_path) not in out and "/etc/" not in out and "/opt/" not in out
    assert "# via -r functions/api/requirements.in" in out
    assert "#   -c constraints.txt" in out and "#   -r layers/common/requirements.in" in out
    assert "\r" not in out and out.endswith("\n")


def test_uv_platform_follows_runtime_glibc_and_architecture() -> None:
    assert uv_platform("python3.12", "x86_64") == "x86_64-manylinux_2_34"
    assert uv_platform("python3.13", "arm64") == "aarch64-manylinux_2_34"
    assert uv_platform("python3.11", "arm64") == "aarch64-manylinux_2_17"
