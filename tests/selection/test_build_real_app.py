"""`relay build` on an app laid out like the real ones: what ships, secrets refused, provenance, the fast path."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from app_helpers import (
    APP_FILES,
    PEM_BODY,
    SECRETS_IN_APP,
    commit_all,
    dist_state,
    git,
    make_real_app,
    remove_secrets,
    source_dot_config,
    zip_names,
)

from builder import schemas


def shipped_code(path: Path) -> set[str]:
    """The zip's files that are not the installed requirement (greeting and its metadata)."""
    return {n for n in zip_names(path) if not n.startswith(("greeting/", "greeting-1.0.dist-info/"))}


def test_secrets_in_the_shipped_package_stop_the_build_and_dist_is_untouched(real_app, relay):
    before = dist_state(real_app)
    run = relay("build", cwd=real_app)
    assert run.code == 4, run
    for rel in SECRETS_IN_APP:
        assert rel in run.stderr, (rel, run.stderr)
    assert "functions.orders.allow_secrets" in run.stderr
    # outside the package: never selected, so never named
    assert "relay.key" not in run.stderr and ".relay/" not in run.stderr
    assert PEM_BODY not in run.stderr + run.stdout and "hunter2" not in run.stderr + run.stdout
    assert dist_state(real_app) == before


def test_secrets_refused_with_json_name_every_file(real_app, relay):
    run = relay("build", "--json", cwd=real_app)
    assert run.code == 4
    text = run.stdout + run.stderr
    for rel in SECRETS_IN_APP:
        assert rel in text


def test_allowed_one_by_one_the_build_ships_them_and_nothing_else(real_app, relay):
    toml = real_app / "relay.toml"
    allow = 'allow_secrets = ["app/.env", "app/id_rsa", "app/deploy.key", "app/common/notes.txt"]'
    # billing allows only three: still refused, naming the fourth
    toml.write_text(toml.read_text().replace(
        'handler = "app.handlers.orders.handle"', f'handler = "app.handlers.orders.handle"\n{allow}').replace(
        'handler = "app.handlers.billing.handler.handle"',
        'handler = "app.handlers.billing.handler.handle"\nallow_secrets = ["app/.env", "app/id_rsa", "app/deploy.key"]'))
    run = relay("build", cwd=real_app)
    assert run.code == 4 and "app/common/notes.txt" in run.stderr and "app/id_rsa" not in run.stderr, run
    toml.write_text(toml.read_text().replace('"app/deploy.key"]', '"app/deploy.key", "app/common/notes.txt"]'))
    run = relay("build", cwd=real_app)
    assert run.code == 0, run
    for name in ("orders", "billing"):
        assert shipped_code(real_app / "dist" / f"{name}.zip") == APP_FILES | set(SECRETS_IN_APP)


def test_secrets_removed_each_zip_holds_exactly_the_package_and_its_requirements(real_app, relay):
    remove_secrets(real_app)
    run = relay("build", "--json", cwd=real_app)
    assert run.code == 0, run
    for name in ("orders", "billing"):
        names = zip_names(real_app / "dist" / f"{name}.zip")
        assert shipped_code(real_app / "dist" / f"{name}.zip") == APP_FILES
        assert "greeting/__init__.py" in names
        manifest = json.loads((real_app / "dist" / f"{name}.manifest.json").read_text())
        assert schemas.errors("manifest", manifest) == []
        assert manifest["source"]["root"] == "." and manifest["source"]["packages"] == ["app"]
        assert manifest["source"]["paths"] == ["app"]


def source_dot_app(root: Path, wheelhouse) -> Path:
    """The issue's workaround layout: `source = "."`, every secret allowed by name."""
    return make_real_app(root, wheelhouse, config=source_dot_config([".env", "relay.key", *SECRETS_IN_APP]))


def test_source_dot_leaves_out_dist_relay_state_venv_and_node_modules(tmp_path, wheelhouse, cache_dir, relay):
    root = source_dot_app(tmp_path / "app", wheelhouse)
    run = relay("build", cwd=root)
    assert run.code == 0, run
    code = shipped_code(root / "dist/orders.zip")
    assert not any(n.startswith(("dist/", ".relay/", ".venv/", "node_modules/", "docs/", "tests/", "infrastructure/"))
                   for n in code), sorted(code)
    # no git here: .gitignore is not consulted, so the ignored files ship (and --explain says so)
    assert "app/local_settings.py" in code
    assert {".env", "relay.key", "requirements.in"} & code == {".env", "relay.key"}


def test_two_cold_builds_and_one_over_a_previous_dist_give_the_same_bytes(tmp_path, wheelhouse, relay, monkeypatch):
    digests = []
    for index, dist in enumerate(("absent", "absent", "present")):
        root = source_dot_app(tmp_path / f"copy{index}" / "realapp", wheelhouse)
        if dist == "absent":
            shutil.rmtree(root / "dist")
        else:
            (root / "dist" / "big-old-build.zip").write_bytes(b"x" * 4096)
        monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / f"cache{index}"))  # cold: nothing reused
        run = relay("build", cwd=root)
        assert run.code == 0, run
        digests.append(hashlib.sha256((root / "dist/orders.zip").read_bytes()).hexdigest())
    assert digests[0] == digests[1] == digests[2]


def test_a_shipped_untracked_file_makes_the_manifest_dirty(real_app, relay):
    remove_secrets(real_app)
    commit_all(real_app)
    assert relay("build", cwd=real_app).code == 0
    manifest = json.loads((real_app / "dist/orders.manifest.json").read_text())
    assert manifest["git"]["dirty"] is False
    assert manifest["git"]["commit"] == git(real_app, "rev-parse", "HEAD").strip()

    (real_app / "docs/new-page.md").write_text("not shipped\n")  # untracked, but not shipped: still clean
    assert relay("build", cwd=real_app).code == 0
    assert json.loads((real_app / "dist/orders.manifest.json").read_text())["git"]["dirty"] is False

    (real_app / "app/common/tax.py").write_text("RATE = 0.2\n")  # untracked and shipped
    assert relay("build", cwd=real_app).code == 0
    assert json.loads((real_app / "dist/orders.manifest.json").read_text())["git"]["dirty"] is True


def test_a_no_op_rebuild_of_a_source_dot_project_takes_the_fast_path(tmp_path, wheelhouse, cache_dir, relay):
    root = source_dot_app(tmp_path / "realapp", wheelhouse)
    git(root, "init", "-q", "-b", "main")
    commit_all(root)
    first = relay("build", "--json", cwd=root)
    assert first.code == 0, first
    assert first.json()["seconds"] > 0
    # what is never shipped may change: a virtualenv, node_modules, a log git ignores
    (root / ".venv/lib/python3.12/site-packages/boto3/__init__.py").write_text("# upgraded\n")
    (root / "node_modules/aws-cdk-lib/index.js").write_text("// upgraded\n")
    again = relay("build", "--json", cwd=root)
    assert again.code == 0, again
    doc = again.json()
    assert doc["nothing_changed"] is True and doc["seconds"] == 0.0, doc  # the stamp's answer, not a build's

    (root / "app/handlers/orders.py").write_text((root / "app/handlers/orders.py").read_text() + "\n# edit\n")
    edited = relay("build", "--json", cwd=root).json()
    assert edited["nothing_changed"] is False and edited["bundles"][0]["status"] == "built"
