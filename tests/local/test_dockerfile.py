"""The CI image's Dockerfile: what can be checked without a Docker engine.

It parses; every base image is pinned by its full version; relay is installed
the README way (`pip install .`, not editable) from a build context that holds
what that install needs; the image runs as a non-root user with `relay` as its
entrypoint and has an interpreter for every runtime the config accepts; and
`pip wheel` of that very context builds a wheel that ships the schemas.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import attrs
import pytest

from builder.scaffold import supported_runtimes

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
_PINNED_TAG = re.compile(r"^\d+\.\d+\.\d+(-[a-z0-9.]+)*$")


# -- a small Dockerfile parser --------------------------------------------------------------


@attrs.frozen
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY ...
    args: str
    line: int


@attrs.frozen
class Stage:
    image: str
    name: str | None
    instructions: tuple[Instruction, ...]


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with `\\` continuations joined and comments dropped (the default escape char)."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment line inside a continued instruction is dropped
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        keyword, _, args = " ".join(p for p in pending if p).partition(" ")
        if not re.fullmatch(r"[A-Za-z]+", keyword):
            raise ValueError(f"line {start}: not an instruction: {keyword!r}")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        pending = []
    if pending:
        raise ValueError("the file ends inside a continued instruction")
    return instructions


def stages(instructions: list[Instruction]) -> list[Stage]:
    found: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            found.append(Stage(words[0], name, ()))
        elif not found:
            assert instruction.keyword == "ARG", f"line {instruction.line}: {instruction.keyword} before FROM"
        else:
            last = found[-1]
            found[-1] = attrs.evolve(last, instructions=(*last.instructions, instruction))
    return found


@pytest.fixture(scope="module")
def dockerfile() -> list[Stage]:
    return stages(parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8")))


def test_the_parser_joins_continuations_and_skips_comments() -> None:
    parsed = parse_dockerfile("# c\nFROM a:1.2.3 AS x\nRUN one \\\n  # inside\n  && two\nUSER 10001\n")

    assert [(i.keyword, i.args) for i in parsed] == [("FROM", "a:1.2.3 AS x"), ("RUN", "one && two"), ("USER", "10001")]
    with pytest.raises(ValueError):
        parse_dockerfile("FROM a:1.2.3\nRUN x \\\n")


# -- the checks -----------------------------------------------------------------------------


def test_every_base_image_is_pinned_by_version(dockerfile: list[Stage]) -> None:
    assert unpinned_images(dockerfile) == []


@pytest.mark.parametrize("line", [
    "FROM python", "FROM python:latest", "FROM python:3.12-slim", "FROM python:3-slim-bookworm",
    "FROM python:3.12.11-slim@sha256:abc",
])
def test_a_floating_base_image_is_caught(line: str) -> None:
    assert unpinned_images(stages(parse_dockerfile(line + "\n")))


def test_runs_as_a_non_root_user_with_relay_as_entrypoint(dockerfile: list[Stage]) -> None:
    assert entrypoint_problems(dockerfile[-1]) == []


@pytest.mark.parametrize("text", [
    'FROM a:1.2.3\nENTRYPOINT ["relay"]\n',  # no USER: root
    'FROM a:1.2.3\nUSER relay\nUSER root\nENTRYPOINT ["relay"]\n',
    'FROM a:1.2.3\nUSER 0:0\nENTRYPOINT ["relay"]\n',
    'FROM a:1.2.3\nENTRYPOINT ["relay"]\nUSER relay\n',  # set after the entrypoint
    'FROM a:1.2.3\nUSER relay\nENTRYPOINT relay\n',  # shell form
    'FROM a:1.2.3\nUSER relay\nENTRYPOINT ["python", "-m", "builder"]\n',
])
def test_a_root_user_or_other_entrypoint_is_caught(text: str) -> None:
    assert entrypoint_problems(stages(parse_dockerfile(text))[-1])


def test_installs_relay_the_readme_way(dockerfile: list[Stage]) -> None:
    install = install_command(dockerfile)

    assert install.target == "." or install.target.startswith(".["), install
    assert not install.editable, "the image must not depend on a source tree (no -e)"
    assert install.copies_context, "the stage that installs must COPY the source (COPY . .)"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    documented = re.findall(r"pip install (?:-[\w-]+ )*(['\"]?\.(?:\[[\w,]+\])?['\"]?)", readme)
    if documented:  # the README documents an install: the image does the same
        assert any(t.strip("'\"").split("[")[0] == "." for t in documented)
    # The venv the stage installs into is what the final image runs.
    final_copies = [i.args for i in dockerfile[-1].instructions if i.keyword == "COPY"]
    assert any(f"--from={install.stage}" in args for args in final_copies)


def test_has_an_interpreter_for_every_supported_runtime(dockerfile: list[Stage]) -> None:
    final = dockerfile[-1]
    base = _python_version(final.image)
    have = {base}
    by_name = {stage.name: stage for stage in dockerfile if stage.name}
    for instruction in final.instructions:
        match = re.search(r"--from=(\S+)\s+/usr/local/bin/python(\d+\.\d+)\s", instruction.args + " ")
        if instruction.keyword == "COPY" and match:
            stage, version = by_name[match.group(1)], match.group(2)
            assert _python_version(stage.image) == version, f"{stage.image} does not hold python{version}"
            assert f"libpython{version}.so" in DOCKERFILE.read_text(), f"python{version} needs its libpython"
            have.add(version)
    wanted = {runtime.removeprefix("python") for runtime in supported_runtimes()}
    assert wanted <= have, f"no interpreter for {sorted(wanted - have)}"


def test_copy_from_names_existing_stages(dockerfile: list[Stage]) -> None:
    names = [stage.name for stage in dockerfile if stage.name]
    for stage in dockerfile:
        for instruction in stage.instructions:
            for source in re.findall(r"--from=(\S+)", instruction.args):
                assert source in names, f"line {instruction.line}: no stage named {source}"


def test_dockerignore_keeps_what_the_install_needs() -> None:
    patterns = dockerignore_patterns()
    needed = ["pyproject.toml", "README.md", "builder/__init__.py", "builder/cli.py", "schemas/config.schema.json",
              "pipelines/github/relay.yml", "pipelines/gitlab/.gitlab-ci.yml"]  # `relay init` ships the CI templates
    for path in needed:
        assert not ignored(path, patterns), f".dockerignore drops {path}, which `pip install .` needs"
    for path in (".venv/bin/python", ".git/HEAD", "examples/shop/dist/orders.zip", "builder/__pycache__/x.pyc"):
        assert ignored(path, patterns), f".dockerignore should drop {path}"


@pytest.mark.slow
def test_a_wheel_builds_from_the_docker_context_with_the_schemas_and_pipelines(tmp_path: Path, dockerfile: list[Stage]) -> None:
    """`pip wheel` (what `pip install .` does first) of the files Docker would send."""
    context = tmp_path / "context"
    copy_context(REPO, context, dockerignore_patterns())
    install = install_command(dockerfile)
    wheels = tmp_path / "wheels"

    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), install.target.strip("'\"")],
        cwd=context, capture_output=True, text=True, timeout=600,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    [wheel] = wheels.glob("lambda_relay-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "builder/schemas/config.schema.json" in names
    assert "builder/schemas/manifest.schema.json" in names
    assert "builder/cli.py" in names and "builder/scaffold.py" in names
    # relay init writes the tested CI templates from the wheel.
    assert {"builder/pipelines/github/relay.yml", "builder/pipelines/gitlab/.gitlab-ci.yml",
            "builder/pipelines/codebuild/buildspec-build.yml"} <= names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "relay = builder.cli:run" in zipfile.ZipFile(wheel).read(entry_points).decode()


# -- helpers --------------------------------------------------------------------------------


def unpinned_images(dockerfile: list[Stage]) -> list[str]:
    """Base images not pinned to a full version (a digest may be added, never instead)."""
    names = {stage.name for stage in dockerfile if stage.name}
    problems = []
    for stage in dockerfile:
        if stage.image in names:
            continue  # FROM an earlier stage
        repository, _, digest = stage.image.partition("@")
        tag = repository.rpartition(":")[2] if ":" in repository else ""
        if not _PINNED_TAG.match(tag):
            problems.append(f"{stage.image}: tag {tag or '(none)'!r} floats; pin major.minor.patch")
        if digest and not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            problems.append(f"{stage.image}: malformed digest")
    return problems


def entrypoint_problems(final: Stage) -> list[str]:
    """The final stage must switch to a non-root USER, then ENTRYPOINT ["relay"] (exec form)."""
    user = None
    for instruction in final.instructions:
        if instruction.keyword == "USER":
            user = instruction.args.split(":")[0]
        if instruction.keyword == "ENTRYPOINT":
            problems = []
            if user is None or user in ("root", "0"):
                problems.append(f"line {instruction.line}: the entrypoint runs as {user or 'root'}")
            try:
                entry = json.loads(instruction.args)
            except json.JSONDecodeError:
                entry = None
            if entry != ["relay"]:
                problems.append(f"line {instruction.line}: ENTRYPOINT is {instruction.args}, not [\"relay\"]")
            later = [i for i in final.instructions if i.keyword == "USER" and i.line > instruction.line]
            if later:
                problems.append(f"line {later[0].line}: USER after the ENTRYPOINT")
            return problems
    return ["no ENTRYPOINT in the final stage"]


@attrs.frozen
class Install:
    stage: str
    target: str
    editable: bool
    copies_context: bool


def install_command(dockerfile: list[Stage]) -> Install:
    for stage in dockerfile:
        copies = any(i.keyword == "COPY" and i.args.split() == [".", "."] for i in stage.instructions)
        for instruction in stage.instructions:
            if instruction.keyword != "RUN":
                continue
            for command in re.split(r"&&|;", instruction.args):
                words = shlex.split(command)
                if "pip" in " ".join(words) and "install" in words:
                    args = words[words.index("install") + 1:]
                    targets = [a for a in args if not a.startswith("-")]
                    if targets and targets[-1].strip("'\"").split("[")[0] == ".":
                        return Install(stage.name or "", targets[-1], "-e" in args or "--editable" in args, copies)
    raise AssertionError("no `pip install .` in the Dockerfile")


def _python_version(image: str) -> str:
    match = re.match(r"^(?:docker\.io/)?(?:library/)?python:(\d+\.\d+)\.\d+", image)
    assert match, f"{image} is not an official python image"
    return match.group(1)


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    assert not any(p.startswith("!") for p in patterns), "exceptions (!) are not modelled by this test"
    return patterns


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, enough for our file: a pattern matches the path or one of its parent folders."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(_pattern_regex(p).fullmatch(prefix) for p in patterns for prefix in prefixes)


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    pattern = pattern.strip("/")
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def copy_context(source: Path, dest: Path, patterns: list[str]) -> None:
    """Copy what `docker build` would send: everything .dockerignore does not drop."""
    for folder, dirs, files in os.walk(source):
        rel_folder = Path(folder).relative_to(source)
        dirs[:] = [d for d in dirs if not ignored((rel_folder / d).as_posix(), patterns)]
        for name in files:
            rel = (rel_folder / name).as_posix()
            if not ignored(rel, patterns):
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source / rel, dest / rel)
