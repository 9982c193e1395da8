"""The image's uid story, run here without Docker: relay builds a workspace that another uid owns.

A Linux host mounts the workspace with the host user's uid; the image starts
as root, and docker/entrypoint.sh runs relay as the workspace's owner (or as
`docker run --user`'s uid). CI containers skip the entrypoint and run as root
in a checkout another uid owns; docker/gitconfig keeps git (the build's
provenance) working there. Each case runs `relay build` with the image's ENV
(the Dockerfile's, its paths re-rooted under a temporary folder standing in
for the image's /) on a project laid out like a real app, and checks who owns
what was written and that the manifests name the commit.

We run as root here (setpriv switches uid); elsewhere these tests skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from image_spec import DOCKER_DIR, image_env

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("setpriv") is None,
                       reason="switching uid needs root and setpriv (util-linux)"),
    pytest.mark.skipif(not (Path("/usr/bin/python3").exists() and
                            Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}").exists()),
                       reason="needs the system's python of the test's version for a relay every uid can run"),
]

HOST_UID = 10002  # the host user who owns the mounted workspace
OTHER_UID = 10001  # a `docker run --user` uid
# relay's venv here may rest on an interpreter other uids cannot run (root's pyenv); the stand-in for the
# image's /opt/relay is a venv of the system's interpreter of the same version that reads this venv's packages.
SYSTEM_PYTHON = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
ENTRYPOINT = DOCKER_DIR / "entrypoint.sh"
GITCONFIG = DOCKER_DIR / "gitconfig"
NO_GIT_CONFIG = {"GIT_CONFIG_GLOBAL": os.devnull}


@pytest.fixture
def image_root(relay) -> Iterator[Path]:
    """A stand-in for the image's / with a project in /workspace, readable by every uid.

    Not under tmp_path: pytest's base temporary folder is private to root, and
    other uids must reach the workspace; mkdtemp gives a unique folder all the same.
    """
    root = Path(tempfile.mkdtemp(prefix="relay-image-"))
    root.chmod(0o755)
    try:
        env = image_env(root)
        for key in ("HOME", "XDG_CACHE_HOME", "RELAY_CACHE_DIR"):  # as the Dockerfile's RUN makes them
            Path(env[key]).mkdir(parents=True, exist_ok=True)
            Path(env[key]).chmod(0o1777)
        install_relay(Path(env["PATH"].split(":")[0]).parent)
        make_project(relay, root / "workspace")
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def install_relay(venv: Path) -> None:
    """A relay at the image's /opt/relay (re-rooted) that any uid can run: this venv's packages, a system interpreter."""
    subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    site_packages = next(Path(sys.prefix).glob("lib/python*/site-packages"))
    (target,) = venv.glob("lib/python*/site-packages")
    (target / "relay-under-test.pth").write_text(f"import site; site.addsitedir({str(site_packages)!r})\n",
                                                 encoding="utf-8")
    script = venv / "bin" / "relay"
    script.write_text(f"#!{venv}/bin/python\nfrom builder.cli import run\nrun()\n", encoding="utf-8")
    script.chmod(0o755)


def make_project(relay, workspace: Path) -> None:
    """`relay init`'s app (a handler package, a layer from a pyproject, locks) plus docs, infra and an ignored secret."""
    # python3.11: this machine's other interpreters may live where another uid cannot run them (root's pyenv).
    run = relay("init", str(workspace), "--pipeline", "github", "--runtime", "python3.11")
    assert run.code == 0, run
    (workspace / "docs").mkdir()
    (workspace / "docs" / "index.md").write_text("# app\n", encoding="utf-8")
    (workspace / "infra").mkdir()
    (workspace / "infra" / "main.tf").write_text('terraform {}\n', encoding="utf-8")
    (workspace / ".env").write_text("API_TOKEN=not-for-the-bundle\n", encoding="utf-8")
    with (workspace / ".gitignore").open("a", encoding="utf-8") as gitignore:
        gitignore.write(".env\n")
    git_env = {**os.environ, **NO_GIT_CONFIG, "GIT_CONFIG_SYSTEM": os.devnull}
    for argv in (["init", "-q"], ["add", "-A"], ["-c", "user.name=dev", "-c", "user.email=dev@example.com",
                                                  "commit", "-q", "-m", "app"]):
        subprocess.run(["git", *argv], cwd=workspace, env=git_env, check=True, capture_output=True)


def head(workspace: Path) -> str:
    return subprocess.run(["git", "-c", f"safe.directory={workspace}", "rev-parse", "HEAD"], cwd=workspace,
                          capture_output=True, text=True, check=True).stdout.strip()


def chown_tree(path: Path, uid: int) -> None:
    for folder, dirs, files in os.walk(path):
        for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
            os.lchown(name, uid, uid)


def the_images_env(root: Path, *, gitconfig: Path = GITCONFIG) -> dict[str, str]:
    """The final stage's ENV (re-rooted), relay from this venv; git reads `gitconfig` as the image's /etc/gitconfig."""
    env = image_env(root)
    env["PATH"] = env["PATH"].replace("$PATH", "/usr/local/bin:/usr/bin:/bin")
    return {**env, **NO_GIT_CONFIG, "GIT_CONFIG_SYSTEM": str(gitconfig), "LANG": "C.UTF-8"}


def build(argv: list[str], root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=root / "workspace", env=env, capture_output=True, text=True, timeout=300)


def owners(path: Path) -> set[int]:
    return {p.stat().st_uid for p in [path, *path.rglob("*")]}


def manifest_commits(workspace: Path) -> set[str | None]:
    return {(json.loads(p.read_text(encoding="utf-8")).get("git") or {}).get("commit")
            for p in (workspace / "dist").glob("*.manifest.json")}


def test_started_as_root_the_entrypoint_builds_as_the_workspace_owner(image_root: Path) -> None:
    workspace = image_root / "workspace"
    chown_tree(workspace, HOST_UID)

    done = build(["sh", str(ENTRYPOINT), "build"], image_root, the_images_env(image_root))

    assert done.returncode == 0, done.stdout + done.stderr
    assert owners(workspace / "dist") == {HOST_UID}, "dist/ belongs to the host user, not to root"
    assert manifest_commits(workspace) == {head(workspace)}, "the manifests name the commit"
    cache = Path(the_images_env(image_root)["RELAY_CACHE_DIR"])
    assert any(cache.iterdir()) and owners(cache) - {0} == {HOST_UID}
    assert not any(p.name == ".env" for p in (workspace / "dist").rglob("*")), done.stdout


def test_with_docker_run_user_relay_builds_as_that_uid(image_root: Path) -> None:
    """`docker run --user "$(id -u):$(id -g)"`: no root at all; HOME and the caches must still be writable."""
    workspace = image_root / "workspace"
    chown_tree(workspace, OTHER_UID)
    as_user = ["setpriv", f"--reuid={OTHER_UID}", f"--regid={OTHER_UID}", "--clear-groups"]

    done = build([*as_user, "sh", str(ENTRYPOINT), "build"], image_root, the_images_env(image_root))

    assert done.returncode == 0, done.stdout + done.stderr
    assert owners(workspace / "dist") == {OTHER_UID}
    assert manifest_commits(workspace) == {head(workspace)}
    assert owners(Path(the_images_env(image_root)["RELAY_CACHE_DIR"])) - {0} == {OTHER_UID}


def test_in_a_ci_container_root_keeps_the_provenance_of_a_checkout_another_uid_owns(image_root: Path) -> None:
    """CI runners exec the job's shell (no entrypoint) as root in a checkout owned by the runner's uid."""
    workspace = image_root / "workspace"
    chown_tree(workspace, HOST_UID)

    done = build(["relay", "build"], image_root, the_images_env(image_root))
    assert done.returncode == 0, done.stdout + done.stderr
    assert manifest_commits(workspace) == {head(workspace)}

    # Without the image's gitconfig git refuses the folder ("dubious ownership") and the commit is lost.
    shutil.rmtree(workspace / "dist")
    without = build(["relay", "build"], image_root, the_images_env(image_root, gitconfig=Path(os.devnull)))
    assert without.returncode == 0, without.stdout + without.stderr
    assert manifest_commits(workspace) == {None}
