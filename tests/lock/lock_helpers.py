"""Helpers for lock tests: tiny relay projects, and the CLI as a user runs it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

RELAY = Path(sys.executable).parent / "relay"


def make_project(
    root: Path,
    *,
    runtime: str = "python3.12",
    function_in: str | None = "six\n",
    layer_in: str | None = None,
    architecture: str = "x86_64",
) -> Path:
    """A minimal relay project: function `api` (and layer `common` when `layer_in`)."""
    (root / "functions" / "api" / "api").mkdir(parents=True, exist_ok=True)
    (root / "functions" / "api" / "api" / "__init__.py").write_text("", encoding="utf-8")
    (root / "functions" / "api" / "api" / "handler.py").write_text(
        "def handle(event, context):\n    return {}\n", encoding="utf-8")
    lines = [
        "[app]", 'name = "demo"', f'runtime = "{runtime}"', f'architecture = "{architecture}"', "",
        "[functions.api]", 'source = "functions/api"', 'handler = "api.handler.handle"',
    ]
    if function_in is not None:
        (root / "functions" / "api" / "requirements.in").write_text(function_in, encoding="utf-8")
        lines.append('requirements = "functions/api/requirements.in"')
    if layer_in is not None:
        (root / "layers" / "common").mkdir(parents=True, exist_ok=True)
        (root / "layers" / "common" / "requirements.in").write_text(layer_in, encoding="utf-8")
        lines += ["", "[layers.common]", 'requirements = "layers/common/requirements.in"']
    (root / "relay.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def copy_project(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest)
    return dest


def relay(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it."""
    return subprocess.run([str(RELAY), *args], cwd=cwd, capture_output=True, text=True, check=False)
