"""`relay init --pipeline X` writes the very files of pipelines/X (the ones test_pipelines runs).

The only difference allowed is the one placeholder: the templates name the
Python version as 3.12 (relay.toml's default runtime), and init writes the
project's runtime version there.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from builder.pipeline_templates import PIPELINE_FILES, TEMPLATE_PYTHON, templates_dir

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


def test_every_template_in_pipelines_is_one_that_init_writes() -> None:
    on_disk = {str(p.relative_to(PIPELINES)) for p in PIPELINES.rglob("*.yml")}
    assert on_disk == {template for files in PIPELINE_FILES.values() for template in files}
    assert templates_dir() == PIPELINES, "a checkout reads the templates from pipelines/"


@pytest.mark.parametrize("pipeline", sorted(PIPELINE_FILES))
def test_init_writes_the_pipelines_files_byte_for_byte(pipeline: str, tmp_path: Path, relay) -> None:
    run = relay("init", str(tmp_path / "app"), "--pipeline", pipeline, "--json")

    assert run.code == 0, run
    written = run.json()["files"]
    for template, target in PIPELINE_FILES[pipeline].items():
        assert target in written
        assert (tmp_path / "app" / target).read_bytes() == (PIPELINES / template).read_bytes(), target


@pytest.mark.parametrize("pipeline", sorted(PIPELINE_FILES))
def test_init_fills_in_the_runtime_python_and_nothing_else(pipeline: str, tmp_path: Path, relay) -> None:
    run = relay("init", str(tmp_path / "app"), "--pipeline", pipeline, "--runtime", "python3.11")

    assert run.code == 0, run
    for template, target in PIPELINE_FILES[pipeline].items():
        source = (PIPELINES / template).read_text(encoding="utf-8")
        written = (tmp_path / "app" / target).read_text(encoding="utf-8")
        assert written == source.replace(TEMPLATE_PYTHON, "3.11"), target
        assert TEMPLATE_PYTHON not in written


def test_the_placeholder_is_only_ever_a_python_version() -> None:
    """3.12 may appear in a template only where it names the Python that runs relay."""
    for files in PIPELINE_FILES.values():
        for template in files:
            for line in (PIPELINES / template).read_text(encoding="utf-8").splitlines():
                if TEMPLATE_PYTHON in line:
                    assert re.search(r"python", line, re.IGNORECASE), f"{template}: {line.strip()}"
