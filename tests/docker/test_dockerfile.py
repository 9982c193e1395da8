"""Static checks of the CI image (no Docker daemon here): what the Dockerfile pins, installs and runs as.

The image must build the same on every machine: base images by digest,
relay's dependencies by sha256 (`pip install --require-hashes`), relay's own
wheel built by a hash-pinned backend without build isolation. It must work
with the workspace mounted from a Linux host: the entrypoint runs relay as
the workspace's owner, and HOME and the caches are writable by any uid
(tests/docker/test_uid_story.py runs that part for real).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pathspec
import pytest
from image_spec import DOCKER_DIR, DOCKERFILE, ROOT, final_stage, instructions, stages
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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


# -- base images ----------------------------------------------------------------------------------------------


def test_every_base_image_is_pinned_by_digest_to_one_debian_release() -> None:
    external = [stage.base for stage in STAGES if stage.base not in STAGE_NAMES]
    assert len(external) == 5  # python 3.11, 3.13, 3.14, and 3.12 twice (install stage, final image)
    matches = [PINNED_IMAGE.match(ref) for ref in external]
    assert all(matches), f"not pinned as python:X.Y.Z-slim-DEBIAN@sha256:<digest>: {external}"
    assert {m.group("debian") for m in matches if m} == {"bookworm"}, "copied interpreters need the same Debian"
    versions = {m.group("version")[:4] for m in matches if m}
    assert versions == {"3.11", "3.12", "3.13", "3.14"}
    install, final = STAGES[-2], STAGES[-1]
    assert install.name == "install" and install.base == final.base, "relay is built on the image it runs on"


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
    assert not final.args_of("USER"), "a fixed USER cannot write a workspace mounted from a Linux host"
    assert final.args_of("ENTRYPOINT") == ['["/usr/local/bin/relay-entrypoint"]']
    assert "docker/entrypoint.sh /usr/local/bin/relay-entrypoint" in final.args_of("COPY")
    assert final.args_of("WORKDIR") == ["/workspace"]
    script = (DOCKER_DIR / "entrypoint.sh").read_text(encoding="utf-8")
    assert "setpriv --reuid" in script and "stat -c %u ." in script
    assert "setpriv --version" in " ".join(final.args_of("RUN")), "setpriv is checked to be in the image"


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
    ignored = pathspec.GitIgnoreSpec.from_lines((ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines())
    copied = [word for args in (i.args for i in instructions(TEXT) if i.keyword == "COPY" and "--from" not in i.args)
              for word in args.split()[:-1]]
    assert "docker/entrypoint.sh" in copied and "docker/requirements.txt" in copied
    for path in copied:
        if path != ".":
            assert (ROOT / path).exists(), path
            assert not ignored.match_file(path), f".dockerignore leaves out {path}"
    for needed in ("pyproject.toml", "README.md", "builder/cli.py", "schemas", "pipelines/github/relay.yml"):
        assert not ignored.match_file(needed), f".dockerignore leaves out {needed}, which the wheel needs"
