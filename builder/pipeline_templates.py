"""The CI definitions of `pipelines/`: the one source `relay init --pipeline X` copies.

The same files are run, step by step against moto, by `tests/pipelines`, so a
project gets exactly the templates that are tested. They ship inside the wheel
as `builder/pipelines`; in a checkout they are read from `pipelines/`.

Placeholder convention: a template names the Python version it runs relay
under as `3.12` (relay.toml's default runtime, so the files work as they
stand); `relay init` writes each file byte for byte with that one token
replaced by its project's runtime version. The templates name no app: they
read everything else from the project's relay.toml.
"""

from __future__ import annotations

import re
from pathlib import Path

_PACKAGED = Path(__file__).parent / "pipelines"
_SOURCE_TREE = Path(__file__).parent.parent / "pipelines"

TEMPLATE_PYTHON = "3.12"
_PYTHON_TOKEN = re.compile(r"(?<![\d.])3\.12(?![\d])")

# pipeline -> {template under pipelines/: where `relay init` writes it in the project}
PIPELINE_FILES: dict[str, dict[str, str]] = {
    "github": {
        "github/relay.yml": ".github/workflows/relay.yml",
        "github/rollback.yml": ".github/workflows/relay-rollback.yml",
    },
    "gitlab": {"gitlab/.gitlab-ci.yml": ".gitlab-ci.yml"},
    "codebuild": {
        "codebuild/buildspec-build.yml": "buildspec-build.yml",
        "codebuild/buildspec-promote.yml": "buildspec-promote.yml",
        "codebuild/buildspec-rollback.yml": "buildspec-rollback.yml",
    },
}


def templates_dir() -> Path:
    """Where the templates are: the wheel's package data when installed, else the checkout's pipelines/."""
    return _PACKAGED if _PACKAGED.is_dir() else _SOURCE_TREE


def fill(text: str, python: str) -> str:
    """A template's text for a project whose runtime runs Python `python` (e.g. "3.13")."""
    return _PYTHON_TOKEN.sub(python, text)


def pipeline_files(pipeline: str, python: str) -> dict[str, str]:
    """Project path -> text of every file of `pipeline`, in the order of PIPELINE_FILES."""
    folder = templates_dir()
    return {
        target: fill((folder / template).read_text(encoding="utf-8"), python)
        for template, target in PIPELINE_FILES[pipeline].items()
    }
