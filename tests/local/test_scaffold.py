"""`relay init`: a new project that locks, builds and invokes straight away."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from builder import schemas
from builder.config import load_project
from builder.errors import UsageError
from builder.lock.lockfile import read_lock
from builder.pipeline_templates import PIPELINE_FILES
from builder.scaffold import app_name_from_folder, init_project, registry_bucket, supported_runtimes


def test_init_lock_build_invoke_in_an_empty_folder(tmp_path: Path, relay, cache_dir: Path) -> None:
    """The acceptance path: `relay init`, `relay lock`, `relay build`, `relay invoke hello`."""
    run = relay("init", "myapp", cwd=tmp_path)
    assert run.code == 0, run
    root = tmp_path / "myapp"
    assert "relay lock" in run.stdout and "cd myapp" in run.stdout

    locked = relay("lock", cwd=root)
    assert locked.code == 0, locked
    # The scaffold's lock is byte for byte what `relay lock` writes for an .in without requirements.
    assert "unchanged" in locked.stdout
    assert relay("lock", "--check", cwd=root).code == 0

    built = relay("build", "--json", cwd=root)
    assert built.code == 0, built
    bundles = {(b["kind"], b["name"]) for b in built.json()["bundles"]}
    assert bundles == {("function", "hello"), ("layer", "shared")}
    assert (root / "dist/hello.zip").is_file()

    invoked = relay("invoke", "hello", "--event", str(root / "events/hello.json"), cwd=root)
    assert invoked.code == 0, invoked
    result = invoked.json()
    assert result["message"] == "Hello, relay!"  # the layer's `shared` package and the configured GREETING


def test_scaffold_validates_and_holds_what_was_asked(tmp_path: Path) -> None:
    result = init_project(tmp_path / "shop", runtime="python3.11", pipeline="gitlab")

    project = load_project(tmp_path / "shop/relay.toml")
    assert project.name == "shop" == result.app
    assert project.runtime == "python3.11"
    assert list(project.functions) == ["hello"]
    assert list(project.layers) == ["shared"]
    assert project.functions["hello"].layers == ("shared",)
    assert project.registry is not None and project.registry.bucket == "shop-relay-artifacts"
    assert project.environments["prod"].requires == "staging"
    document = tomllib.loads((tmp_path / "shop/relay.toml").read_text(encoding="utf-8"))
    assert schemas.errors("config", document) == []
    lock = read_lock(tmp_path / "shop/functions/hello/requirements.txt")
    assert lock.runtime == "python3.11" and lock.requirements == ()
    gitignore = (tmp_path / "shop/.gitignore").read_text().split()
    assert "dist/" in gitignore and ".relay/" in gitignore
    assert (tmp_path / "shop/.gitlab-ci.yml").is_file()
    assert "image: python:3.11-" in (tmp_path / "shop/.gitlab-ci.yml").read_text(encoding="utf-8")
    assert sorted(result.files) == sorted(
        str(p.relative_to(tmp_path / "shop")) for p in (tmp_path / "shop").rglob("*") if p.is_file()
    )


def test_init_in_the_current_folder_takes_its_name(tmp_path: Path, relay) -> None:
    folder = tmp_path / "Billing Service"
    folder.mkdir()

    run = relay("init", "--pipeline", "none", "--json", cwd=folder)

    assert run.code == 0, run
    assert run.json()["app"] == "Billing-Service"
    assert load_project(folder / "relay.toml").name == "Billing-Service"


def test_refuses_to_overwrite_and_writes_nothing(tmp_path: Path, relay) -> None:
    (tmp_path / "functions/hello").mkdir(parents=True)
    (tmp_path / "functions/hello/requirements.txt").write_text("mine\n")

    run = relay("init", str(tmp_path))

    assert run.code == UsageError.exit_code, run
    assert "would overwrite functions/hello/requirements.txt" in run.stderr
    assert (tmp_path / "functions/hello/requirements.txt").read_text() == "mine\n"
    assert not (tmp_path / "relay.toml").exists()
    assert not (tmp_path / "functions/hello/hello").exists()


def test_a_second_init_is_refused(tmp_path: Path) -> None:
    init_project(tmp_path / "app")

    with pytest.raises(UsageError, match="relay.toml"):
        init_project(tmp_path / "app")


def test_a_bad_name_is_refused(tmp_path: Path, relay) -> None:
    run = relay("init", str(tmp_path / "x"), "--name", "9lives")

    assert run.code == UsageError.exit_code, run
    assert "not a valid app name" in run.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("folder, name", [
    ("my app.v2", "my-app-v2"), ("2fast", "fast"), ("ok_name", "ok_name"), ("123", None), ("---", None),
])
def test_app_name_from_folder(folder: str, name: str | None) -> None:
    assert app_name_from_folder(folder) == name


def test_registry_bucket_placeholder_is_a_valid_bucket_name() -> None:
    pattern = re.compile(schemas.load("config")["$defs"]["registry"]["properties"]["bucket"]["pattern"])
    for app in ("Shop", "a", "My_App", "x" * 64):
        assert pattern.match(registry_bucket(app)), app


@pytest.mark.parametrize("runtime", supported_runtimes())
def test_every_supported_runtime_scaffolds_a_valid_project(tmp_path: Path, relay, runtime: str) -> None:
    run = relay("init", str(tmp_path / "app"), "--runtime", runtime, "--pipeline", "none")

    assert run.code == 0, run
    assert load_project(tmp_path / "app/relay.toml").runtime == runtime
    assert relay("lock", "--check", cwd=tmp_path / "app").code == 0


# -- the CI pipelines -----------------------------------------------------------------------


@pytest.mark.parametrize("pipeline", sorted(PIPELINE_FILES))
def test_pipeline_calls_only_relay_commands_that_exist(tmp_path: Path, pipeline: str) -> None:
    result = init_project(tmp_path / "app", pipeline=pipeline)
    written = list(PIPELINE_FILES[pipeline].values())
    assert set(written) <= set(result.files)

    calls = [call for rel in written for call in relay_calls((tmp_path / "app" / rel).read_text(encoding="utf-8"))]

    assert [c[0] for c in calls if c[0] in ("lock", "build")][:2] == ["lock", "build"]
    assert {c[0] for c in calls} >= {"lock", "build", "publish", "promote", "rollback"}
    for call in calls:
        check_against_cli(call)


@pytest.mark.parametrize("pipeline", sorted(PIPELINE_FILES))
def test_pipeline_is_valid_yaml_naming_the_runtime(tmp_path: Path, pipeline: str) -> None:
    yaml = pytest.importorskip("yaml")
    init_project(tmp_path / "app", pipeline=pipeline, runtime="python3.13")

    for rel in PIPELINE_FILES[pipeline].values():
        document = yaml.safe_load((tmp_path / "app" / rel).read_text(encoding="utf-8"))
        assert isinstance(document, dict) and document
        assert "3.13" in json.dumps(document) and "3.12" not in json.dumps(document), rel


def test_no_pipeline_writes_no_ci_file(tmp_path: Path) -> None:
    result = init_project(tmp_path / "app", pipeline="none")

    ci_files = {rel for files in PIPELINE_FILES.values() for rel in files.values()}
    for path in ci_files:
        assert not (tmp_path / "app" / path).exists()
    assert not ci_files & set(result.files)


def relay_calls(text: str) -> list[list[str]]:
    """Every `relay ...` command line in a CI definition, split like a shell would (quotes kept as one word)."""
    calls = []
    for line in text.splitlines():
        line = line.split(" #")[0].strip()
        match = re.search(r"(?:^|run:\s*|-\s+)relay\s+(.*)$", line)
        if match and not line.startswith("#"):
            calls.append(shlex.split(match.group(1)))
    return calls


def check_against_cli(call: list[str]) -> None:
    """The subcommand exists and takes each --option used (for commands this relay has)."""
    import click

    from builder.cli import cli

    name, args = call[0], call[1:]
    command = cli.get_command(click.Context(cli), name)
    assert command is not None, f"unknown relay command in pipeline: {name}"
    known = {opt for param in command.params for opt in getattr(param, "opts", ())}
    for arg in args:
        if arg.startswith("--"):
            assert arg.split("=")[0] in known, f"relay {name} has no option {arg}"


def test_the_scaffold_signs_with_its_own_key_which_it_trusts_and_gitignores(tmp_path: Path) -> None:
    """relay.toml's signing key is the key its trusted_keys pin, and no private key can be committed."""
    from builder.registry.factory import choose_signer

    init_project(tmp_path / "shop", pipeline="none")
    project = load_project(tmp_path / "shop/relay.toml")
    assert project.registry is not None
    signer = choose_signer(project, None, environ={})  # type: ignore[arg-type]
    assert [k.keyid for k in project.registry.trusted_keys] == [signer.keyid]
    assert signer.source == "relay.toml [registry.signing] signing.key"
    assert (tmp_path / "shop/signing.key").stat().st_mode & 0o077 == 0
    ignored = (tmp_path / "shop/.gitignore").read_text().split()
    assert {"*.key", ".relay/", "dist/", ".venv/"} <= set(ignored)
    # Each environment's functions get an execution role, so `relay promote` can create them.
    for env in project.environments.values():
        role = project.functions["hello"].role_in(env.account, env.region)
        assert role == f"arn:aws:iam::{env.account}:role/shop-hello"


def test_keygen_in_a_scaffolded_project_writes_an_ignored_key_and_an_entry_to_paste(tmp_path: Path, relay) -> None:
    import shutil
    import subprocess

    from builder.registry.signing import TrustedKeys

    init_project(tmp_path / "shop", pipeline="none")
    root = tmp_path / "shop"
    made = relay("keygen", "--out", "relay.key", cwd=root)
    assert made.code == 0, made
    assert "warning" not in made.stderr, "the scaffold's .gitignore covers the key before any git init"
    entry = made.stdout[made.stdout.index("[[registry.trusted_keys]]"):]
    assert 'public_key = "relay.key.pub"' in entry
    with open(root / "relay.toml", "a", encoding="utf-8") as config:
        config.write("\n" + entry)  # pasted as printed
    project = load_project(root / "relay.toml")
    assert project.registry is not None
    assert len(TrustedKeys.from_config(project.registry.trusted_keys).keys) == 2

    if shutil.which("git") is None:
        pytest.skip("git is not installed: the .gitignore check needs it")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    checked = subprocess.run(["git", "-C", str(root), "check-ignore", "relay.key", "signing.key", "relay.key.pub"],
                             capture_output=True, text=True)
    assert checked.stdout.split() == ["relay.key", "signing.key"], "private keys ignored, public ones committed"


def test_keygen_with_an_out_in_a_subfolder_names_the_public_key_from_the_project(tmp_path: Path, relay) -> None:
    init_project(tmp_path / "shop", pipeline="none")
    made = relay("keygen", "--out", "keys/ci.key", "--json", cwd=tmp_path / "shop")
    assert made.code == 0, made
    assert 'public_key = "keys/ci.key.pub"' in made.json()["trusted_keys_toml"]
    assert (tmp_path / "shop/keys/ci.key").is_file() and made.json()["gitignored"] is True


def test_keygen_warns_when_no_gitignore_covers_the_private_key(tmp_path: Path, relay) -> None:
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj/.git").mkdir()  # the work tree's top: rules above it do not count
    (tmp_path / ".gitignore").write_text("*.key\n")
    (tmp_path / "proj/.gitignore").write_text("dist/\n")
    made = relay("keygen", "--out", "ci.key", cwd=tmp_path / "proj")
    assert made.code == 0, made
    assert "warning: no .gitignore covers ci.key" in made.stderr

    (tmp_path / "proj/.gitignore").write_text("dist/\nsecrets/\n")
    assert "warning" not in relay("keygen", "--out", "secrets/ci.key", cwd=tmp_path / "proj").stderr
