"""The Dockerfile read as instructions, for checks that need no Docker daemon.

Only what the checks need: instructions with their continuation lines
joined, grouped into stages, and the final stage's ENV values.
"""

from __future__ import annotations

import re
import shlex
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
