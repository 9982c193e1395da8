"""The README's "Your own project" block, run as written: a new user's first hour.

The block is extracted from README.md (section Quickstart, the code block
after "Your own project") and run line for line by bash with `set -e`, from
the relay checkout, in a shell that has only PATH, HOME (an empty temporary
folder) and LANG: no AWS settings, no relay settings, relay not on PATH until
the block's own install step puts it there. PATH is the system's plus one
folder holding only the scaffold's runtime Python (`python3.12`), which
`relay invoke` needs as it would on the user's machine (a clean HOME hides
pyenv's versions). Every command must exit 0, through `relay promote` and
`relay status`; the sandbox is stopped afterwards whatever happened.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"


def own_project_block(readme: str) -> str:
    """The code block that follows "Your own project" in the Quickstart section."""
    quickstart = readme.split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    after = quickstart.split("Your own project", 1)[1]
    found = re.search(r"^```[a-z]*\n(.*?)^```$", after, flags=re.MULTILINE | re.DOTALL)
    assert found, "README: no code block after 'Your own project' in Quickstart"
    return found.group(1)


def test_the_block_installs_relay_and_keeps_the_project_out_of_the_checkout() -> None:
    block = own_project_block(README.read_text(encoding="utf-8"))
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    commands = [c for c in commands if c]
    assert commands[0] in (". .venv/bin/activate", "source .venv/bin/activate"), "relay is put on PATH first"
    assert any(c.startswith("cd ~") and "relay init myapp" in c for c in commands), "the project goes to $HOME"
    for step in ("relay lock", "relay build", "relay local up", "relay publish", "relay promote", "relay status"):
        assert any(c.startswith(step) for c in commands), step


def test_the_readme_block_runs_verbatim_in_a_clean_home(tmp_path: Path) -> None:
    if not (ROOT / ".venv/bin/activate").is_file():
        pytest.skip("the checkout has no .venv (the block's install step is `make install`'s venv, activated)")
    from builder.runtime.interpreter import runtime_python
    from builder.scaffold import DEFAULT_RUNTIME

    python = runtime_python(DEFAULT_RUNTIME)
    if python is None:
        pytest.skip(f"no {DEFAULT_RUNTIME} interpreter here: the block's `relay invoke` needs it")
    runtime_bin = tmp_path / "runtime-bin"
    runtime_bin.mkdir()
    (runtime_bin / DEFAULT_RUNTIME).symlink_to(Path(python.path).resolve())
    home = tmp_path / "home"
    home.mkdir()
    block = own_project_block(README.read_text(encoding="utf-8"))
    script = "set -e\nset -x\n" + block
    env = {"PATH": f"{CLEAN_PATH}:{runtime_bin}", "HOME": str(home), "LANG": "C.UTF-8"}
    project = home / "myapp"
    try:
        done = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, (f"exit {done.returncode}\n--- stdout\n{done.stdout[-4000:]}\n"
                                      f"--- stderr\n{done.stderr[-6000:]}")
    finally:
        _stop_sandbox(project)

    assert not (ROOT / "myapp").exists(), "the project was made inside the relay checkout"
    assert (project / "relay.toml").is_file()
    assert "Promoted myapp@0.0.1 to staging" in done.stdout
    assert "note: signing with key" in done.stderr and "[registry.signing] signing.key" in done.stderr
    status = done.stdout.split("Promoted myapp@0.0.1 to staging", 1)[1]
    assert any(line.startswith("staging") and "0.0.1" in line for line in status.splitlines()), status


def _stop_sandbox(project: Path) -> None:
    """Stop the block's sandbox if the block did not get to `relay local down` (the test's own clean-up)."""
    from builder.local.lifecycle import local_down

    if (project / ".relay/local.json").is_file():
        local_down(project)
