"""Static checks of the CI image (no Docker daemon here): what the Dockerfile pins, installs and runs as.

The image must build the same on every machine: base images by digest,
relay's dependencies by sha256 (`pip install --require-hashes`), relay's own
wheel built by a hash-pinned backend without build isolation. It must work
with the workspace mounted from a Linux host: the entrypoint runs relay as
the workspace's owner, and HOME and the caches are writable by any uid
(tests/docker/test_uid_story.py runs that part for real). It has an
interpreter for every runtime the config accepts, and the build context holds
what the wheel needs and none of the host's clutter.

Each rule is a function over the parsed Dockerfile, tested on the real file
and on small wrong ones, so a rule that can no longer fail is noticed.
(Moved here, with the image's new rules, from tests/local/test_dockerfile.py.)
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from image_spec import (
    DOCKER_DIR,
    DOCKERFILE,
    ROOT,
    Stage,
    dockerignore_patterns,
    final_stage,
    ignored,
    instructions,
    stages,
)
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from builder.scaffold import supported_runtimes

TEXT = DOCKERFILE.read_text(encoding="utf-8")
STAGES = stages(TEXT)
STAGE_NAMES = {stage.name for stage in STAGES if stage.name}
PINNED_IMAGE = re.compile(r"^python:(?P<version>\d+\.\d+\.\d+)-slim-(?P<debian>[a-z]+)@sha256:[0-9a-f]{64}$")
REQUIREMENTS = DOCKER_DIR / "requirements.txt"
BUILD_REQUIREMENTS = DOCKER_DIR / "build-requirements.txt"


def runs() -> list[str]:
    return [i.args for i in instructions(TEXT) if i.keyword == "RUN"]


def pip_commands() -> list[str]:
    """Each `pip install` / `pip wheel` command of every RUN (split at `&&`)."""
    return [part.strip() for run in runs() for part in run.split("&&") if re.search(r"\bpip (install|wheel)\b", part)]


def pins(path: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of a hash-pinned requirements file."""
    found: dict[str, tuple[str, int]] = {}
    for entry in re.split(r"\n(?=\S)", path.read_text(encoding="utf-8")):
        lines = [line for line in entry.splitlines() if not line.lstrip().startswith("#")]
        if not lines:
            continue
        requirement = Requirement(lines[0].rstrip(" \\").split(";")[0].strip())
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{path.name}: {lines[0]} is not pinned with =="
        found[canonicalize_name(requirement.name)] = (spec.version, " ".join(lines).count("--hash=sha256:"))
    return found


def unpinned_images(parsed: list[Stage]) -> list[str]:
    """Base images not pinned as python:X.Y.Z-slim-DEBIAN@sha256:<digest> (FROM an earlier stage is fine)."""
    names = {stage.name for stage in parsed if stage.name}
    return [stage.base for stage in parsed if stage.base not in names and not PINNED_IMAGE.match(stage.base)]


def user_problems(final: Stage) -> list[str]:
    """The final stage must leave the user to the entrypoint: no fixed USER, ENTRYPOINT the relay entrypoint."""
    problems = [f"USER {args}: a fixed uid cannot write a workspace mounted from a Linux host"
                for args in final.args_of("USER")]
    if final.args_of("ENTRYPOINT") != ['["/usr/local/bin/relay-entrypoint"]']:
        problems.append(f"ENTRYPOINT {final.args_of('ENTRYPOINT')}: not the relay entrypoint (exec form)")
    if "docker/entrypoint.sh /usr/local/bin/relay-entrypoint" not in final.args_of("COPY"):
        problems.append("docker/entrypoint.sh is not copied to /usr/local/bin/relay-entrypoint")
    return problems


def test_the_parser_joins_continuations_and_skips_comments() -> None:
    parsed = instructions("# c\nFROM a:1.2.3 AS x\nRUN one \\\n  # inside\n  && two\nUSER 10001\n")

    assert [(i.keyword, i.args) for i in parsed] == [("FROM", "a:1.2.3 AS x"), ("RUN", "one && two"), ("USER", "10001")]
    with pytest.raises(AssertionError):
        instructions("FROM a:1.2.3\nRUN x \\\n")


# -- base images ----------------------------------------------------------------------------------------------


def test_every_base_image_is_pinned_by_digest_to_one_debian_release() -> None:
    assert unpinned_images(STAGES) == []
    external = [stage.base for stage in STAGES if stage.base not in STAGE_NAMES]
    assert len(external) == 5  # python 3.11, 3.13, 3.14, and 3.12 twice (install stage, final image)
    matches = [PINNED_IMAGE.match(ref) for ref in external]
    assert {m.group("debian") for m in matches if m} == {"bookworm"}, "copied interpreters need the same Debian"
    versions = {m.group("version")[:4] for m in matches if m}
    assert versions == {"3.11", "3.12", "3.13", "3.14"}
    install, final = STAGES[-2], STAGES[-1]
    assert install.name == "install" and install.base == final.base, "relay is built on the image it runs on"


@pytest.mark.parametrize("line", [
    "FROM python", "FROM python:latest", "FROM python:3.12-slim", "FROM python:3-slim-bookworm",
    "FROM python:3.12.11-slim-bookworm", "FROM python:3.12.11-slim@sha256:abc",
    "FROM python:3.12-slim-bookworm@sha256:" + "0" * 64,
])
def test_a_floating_base_image_is_caught(line: str) -> None:
    assert unpinned_images(stages(line + "\n"))


def test_has_an_interpreter_for_every_supported_runtime() -> None:
    final = STAGES[-1]
    match = PINNED_IMAGE.match(final.base)
    assert match
    have = {match.group("version").rsplit(".", 1)[0]}
    by_name = {stage.name: stage for stage in STAGES if stage.name}
    for args in final.args_of("COPY"):
        copied = re.search(r"--from=(\S+)\s+/usr/local/bin/python(\d+\.\d+)\s", args + " ")
        if copied:
            stage, version = by_name[copied.group(1)], copied.group(2)
            assert stage.base.startswith(f"python:{version}."), f"{stage.base} does not hold python{version}"
            assert f"libpython{version}.so" in TEXT, f"python{version} needs its libpython"
            have.add(version)
    wanted = {runtime.removeprefix("python") for runtime in supported_runtimes()}
    assert wanted <= have, f"no interpreter for {sorted(wanted - have)}"


def test_copy_from_names_existing_stages() -> None:
    for stage in STAGES:
        for args in stage.args_of("COPY"):
            for source in re.findall(r"--from=(\S+)", args):
                assert source in STAGE_NAMES, f"COPY {args}: no stage named {source}"


# -- what is installed, and how ---------------------------------------------------------------------------------


def test_dependencies_are_installed_only_with_require_hashes() -> None:
    commands = pip_commands()
    installs = [c for c in commands if " install " in c]
    hashed = [c for c in installs if "--require-hashes" in c]
    assert [re.search(r"-r (\S+)", c).group(1) for c in hashed if re.search(r"-r (\S+)", c)] == [
        "docker/requirements.txt", "docker/build-requirements.txt"]
    assert all("--only-binary :all:" in c for c in hashed), "nothing compiled from an sdist at install time"
    (relay_install,) = [c for c in installs if c not in hashed]
    assert "--no-deps" in relay_install and "--no-index" in relay_install and "/wheels/" in relay_install
    (wheel,) = [c for c in commands if " wheel " in c]
    assert "--no-build-isolation" in wheel and "--no-index" in wheel, "no unpinned build backend is downloaded"
    assert "pip check" in " ".join(runs())
    assert not any(re.search(r"\s(-e|--editable)\s", f" {c} ") for c in installs), "no source tree in the image"
    install = STAGES[-2]
    assert ". ." in install.args_of("COPY"), "the wheel is built from the build context"
    assert any(args.startswith("--from=install /opt/relay") for args in STAGES[-1].args_of("COPY"))


@pytest.mark.parametrize("path", [REQUIREMENTS, BUILD_REQUIREMENTS], ids=lambda p: p.name)
def test_the_hashed_lock_pins_every_requirement_with_hashes(path: Path) -> None:
    found = pins(path)
    assert found
    assert all(count >= 1 for _, count in found.values()), {k: v for k, v in found.items() if v[1] < 1}
    assert "make docker-requirements" in path.read_text(encoding="utf-8"), "says how it is regenerated"


def test_the_hashed_lock_holds_relays_dependencies_at_the_tested_versions() -> None:
    """A dependency added to pyproject.toml, or a pin moved in constraints.txt, needs `make docker-requirements`."""
    found = pins(REQUIREMENTS)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for line in project["project"]["dependencies"]:
        name = canonicalize_name(Requirement(line).name)
        assert name in found, f"{name} (pyproject.toml) is missing from docker/requirements.txt"
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.strip().partition("==")
            if canonicalize_name(name) in found:
                assert found[canonicalize_name(name)][0] == version, f"{name}: constraints.txt has {version}"
    build = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["build-system"]["requires"]
    built = pins(BUILD_REQUIREMENTS)
    for line in build:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in built and requirement.specifier.contains(built[name][0]), f"{line} vs build-requirements.txt"


# -- who relay runs as, where it may write --------------------------------------------------------------------------


def test_the_entrypoint_picks_the_user_not_a_fixed_uid() -> None:
    final = final_stage()
    assert user_problems(final) == []
    assert final.args_of("WORKDIR") == ["/workspace"]
    assert (DOCKER_DIR / "entrypoint.sh").stat().st_mode & 0o111 == 0o111, "COPY keeps the mode: it must be executable"
    script = (DOCKER_DIR / "entrypoint.sh").read_text(encoding="utf-8")
    assert "setpriv --reuid" in script and "stat -c %u ." in script
    assert "setpriv --version" in " ".join(final.args_of("RUN")), "setpriv is checked to be in the image"


@pytest.mark.parametrize("text", [
    'FROM a\nUSER 10001\nCOPY docker/entrypoint.sh /usr/local/bin/relay-entrypoint\n'
    'ENTRYPOINT ["/usr/local/bin/relay-entrypoint"]\n',  # a fixed uid
    'FROM a\nCOPY docker/entrypoint.sh /usr/local/bin/relay-entrypoint\nENTRYPOINT ["relay"]\n',  # no owner switch
    'FROM a\nCOPY docker/entrypoint.sh /usr/local/bin/relay-entrypoint\nENTRYPOINT /usr/local/bin/relay-entrypoint\n',
    'FROM a\nENTRYPOINT ["/usr/local/bin/relay-entrypoint"]\n',  # the script is not in the image
])
def test_a_fixed_user_or_another_entrypoint_is_caught(text: str) -> None:
    assert user_problems(stages(text)[-1])


def test_home_and_caches_are_created_writable_by_any_uid() -> None:
    final = final_stage()
    env = final.env()
    home, xdg, cache = env["HOME"], env["XDG_CACHE_HOME"], env["RELAY_CACHE_DIR"]
    assert cache.startswith(xdg + "/"), "one volume at XDG_CACHE_HOME keeps relay's, pip's and uv's caches"
    created = " ".join(final.args_of("RUN"))
    mkdir = re.search(r"mkdir -p ([^&]+)", created)
    chmod = re.search(r"chmod 1777 ([^&]+)", created)
    assert mkdir and chmod
    for folder in (home, xdg, cache):
        assert folder in chmod.group(1).split(), f"{folder} is not made writable by any uid"
    assert {home, cache} <= set(mkdir.group(1).split())
    assert env["PATH"].startswith("/opt/relay/bin:")


def test_git_is_installed_and_trusts_every_folder() -> None:
    final = final_stage()
    assert any("apt-get install" in run and " git" in run for run in final.args_of("RUN"))
    assert "docker/gitconfig /etc/gitconfig" in final.args_of("COPY")
    text = (DOCKER_DIR / "gitconfig").read_text(encoding="utf-8")
    assert re.search(r"^\[safe\]\s*\n\s*directory = \*$", text, re.MULTILINE)


def test_the_build_context_holds_what_the_dockerfile_copies() -> None:
    patterns = dockerignore_patterns()
    copied = [word for args in (i.args for i in instructions(TEXT) if i.keyword == "COPY" and "--from" not in i.args)
              for word in args.split()[:-1]]
    assert "docker/entrypoint.sh" in copied and "docker/requirements.txt" in copied
    for path in copied:
        if path != ".":
            assert (ROOT / path).exists(), path
            assert not ignored(path, patterns), f".dockerignore leaves out {path}"
    needed = ["pyproject.toml", "README.md", "builder/__init__.py", "builder/cli.py", "schemas/config.schema.json",
              "pipelines/github/relay.yml", "pipelines/gitlab/.gitlab-ci.yml"]  # `relay init` ships the CI templates
    for path in needed:
        assert not ignored(path, patterns), f".dockerignore leaves out {path}, which the wheel needs"
    for path in (".venv/bin/python", ".git/HEAD", "examples/shop/dist/orders.zip", "builder/__pycache__/x.pyc",
                 "tests/conftest.py", ".mypy_cache/x"):
        assert ignored(path, patterns), f".dockerignore should leave out {path}"
