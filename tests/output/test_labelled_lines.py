"""error:, hint: and note: lines wrap to the terminal under their label, and stay one line each in a pipe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def relay(*args: str, columns: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns:
        env["COLUMNS"] = columns
    return subprocess.run([sys.executable, "-m", "builder", "-C", str(ROOT / "examples" / "shop"), "promote", "1.0.0",
                           "--to", "nowhere"], capture_output=True, text=True, env=env, timeout=120)


def test_an_error_wraps_to_the_terminal_width_under_its_label():
    narrow = relay(columns="32")

    assert narrow.returncode == 12, narrow.stderr
    lines = narrow.stderr.splitlines()
    assert all(len(line) <= 32 for line in lines), lines
    assert lines[0].startswith("error: ") and lines[1].startswith("       ")  # continued under the message
    assert any(line.startswith("hint: ") for line in lines)
    assert " ".join(part.strip() for part in lines).count("'nowhere'") == 1


def test_off_a_terminal_each_label_is_one_line():
    piped = relay(columns=None)

    assert piped.returncode == 12
    assert [line.split(":")[0] for line in piped.stderr.splitlines()] == ["error", "hint"]
