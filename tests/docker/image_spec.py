"""The Dockerfile read as instructions, for checks that need no Docker daemon.

Only what the checks need: instructions with their continuation lines
joined, grouped into stages, and the final stage's ENV values.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKER_DIR = ROOT / "docker"


@attrs.frozen
class Instruction:
    keyword: str  # upper case: FROM, RUN, ENV ...
    args: str


@attrs.frozen
class Stage:
    base: str  # the FROM image (or an earlier stage's name)
    name: str | None
    instructions: tuple[Instruction, ...]

    def args_of(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        """Every ENV of the stage (`KEY=value ...` form), later ones winning."""
        values: dict[str, str] = {}
        for args in self.args_of("ENV"):
            for token in shlex.split(args):
                key, sep, value = token.partition("=")
                assert sep, f"ENV {args!r}: use the KEY=value form"
                values[key] = value
        return values


def instructions(text: str) -> list[Instruction]:
    """Instructions in order, comments dropped and `\\` continuations joined."""
    found: list[Instruction] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = pending + stripped
        pending = ""
        keyword, _, args = whole.partition(" ")
        found.append(Instruction(keyword.upper(), re.sub(r"\s+", " ", args.strip())))
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return found


def stages(text: str) -> list[Stage]:
    result: list[Stage] = []
    current: list[Instruction] = []
    base, name = "", None
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            if base:
                result.append(Stage(base, name, tuple(current)))
            words = instruction.args.split()
            base = words[0]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            current = []
        else:
            current.append(instruction)
    if base:
        result.append(Stage(base, name, tuple(current)))
    return result


def final_stage() -> Stage:
    return stages(DOCKERFILE.read_text(encoding="utf-8"))[-1]


def image_env(root: Path) -> dict[str, str]:
    """The final stage's ENV with each absolute path re-rooted under `root` (a stand-in for the image's /)."""
    env = {}
    for key, value in final_stage().env().items():
        parts = [f"{root}{part}" if part.startswith("/") else part for part in value.split(":")]
        env[key] = ":".join(parts)
    return env


# -- the build context: Docker's .dockerignore rule --------------------------------------------------------------


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    assert not any(p.startswith("!") for p in patterns), "exceptions (!) are not modelled here"
    return patterns


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, enough for our file: a pattern (anchored at the context's root) matches the path or a parent."""
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


def copy_context(dest: Path) -> Path:
    """Copy what `docker build .` would send: everything .dockerignore does not drop."""
    patterns = dockerignore_patterns()
    for folder, dirs, files in os.walk(ROOT):
        rel_folder = Path(folder).relative_to(ROOT)
        dirs[:] = [d for d in dirs if not ignored((rel_folder / d).as_posix(), patterns)]
        for name in files:
            rel = (rel_folder / name).as_posix()
            if not ignored(rel, patterns):
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / rel, dest / rel)
    return dest
