"""`relay build --explain NAME`: what a bundle would ship and which rule kept or dropped each path."""

from __future__ import annotations

from app_helpers import SECRETS_IN_APP


def rules(doc: dict) -> dict[str, str]:
    return {item["path"]: item["rule"] for item in [*doc["files"], *doc["dropped"]]}


def test_explain_names_the_rule_for_each_kind_of_path(real_app, relay):
    run = relay("build", "--explain", "orders", "--json", cwd=real_app)
    assert run.code == 0, run
    doc = run.json()
    found = rules(doc)
    assert found["app/handlers/orders.py"] == "package"  # kept: in the package folder
    assert found["app/README.md"] == "exclude"  # [app] exclude = ["*.md"]
    assert found["app/local_settings.py"] == "ignored by git"  # .gitignore
    assert found["app/server.log"] == "ignored by git"
    assert found[".venv/"] == "always out" and found["app/__pycache__/"] == "always out"
    assert found["dist/"] == "always out" and found[".relay/"] == "always out" and found["node_modules/"] == "always out"
    assert found["app/common/SCHEMA.md"] == "re-included"  # "!app/common/SCHEMA.md"
    assert found["docs/"] == "outside packages"
    details = {item["path"]: item["detail"] for item in doc["dropped"]}
    assert details["app/README.md"] == "*.md ([app] exclude)"
    # folders dropped once, not file by file
    assert not any(path.startswith(".venv/") and path != ".venv/" for path in found)
    assert {s["path"] for s in doc["secrets"]} == set(SECRETS_IN_APP)
    assert not set(SECRETS_IN_APP) & {f["path"] for f in doc["files"]}


def test_explain_for_people_builds_nothing(real_app, relay):
    before = sorted(p.name for p in (real_app / "dist").iterdir())
    run = relay("build", "--explain", "billing", cwd=real_app)
    assert run.code == 0, run
    lines = run.stdout.splitlines()
    assert any("app/local_settings.py" in line and "ignored by git" in line for line in lines)
    assert any(line.startswith(".venv/") and "always out: virtualenv" in line for line in lines)
    assert any("app/common/SCHEMA.md" in line and "re-included: !app/common/SCHEMA.md" in line for line in lines)
    assert any("app/id_rsa" in line and 'functions.billing.allow_secrets = ["app/id_rsa"]' in line for line in lines)
    assert sorted(p.name for p in (real_app / "dist").iterdir()) == before


def test_explain_outside_git_says_gitignore_was_not_used(tmp_path, wheelhouse, cache_dir, relay):
    from app_helpers import make_real_app

    root = make_real_app(tmp_path / "nogit", wheelhouse)
    doc = relay("build", "--explain", "orders", "--json", cwd=root).json()
    assert "not in a git work tree" in doc["git"]
    assert rules(doc)["app/local_settings.py"] == "package"  # nothing says to leave it out


def test_explain_a_layer_and_an_unknown_name(real_app, relay):
    toml = real_app / "relay.toml"
    (real_app / "libs/shared/shared").mkdir(parents=True)
    (real_app / "libs/shared/shared/__init__.py").write_text("")
    (real_app / "libs/shared/pyproject.toml").write_text("[project]\nname = 'shared'\n")
    (real_app / "libs/shared/shared/.env").write_text("TOKEN=1\n")
    toml.write_text(toml.read_text() + '\n[layers.common]\npackages = ["libs/shared"]\n')
    doc = relay("build", "--explain", "common", "--json", cwd=real_app).json()
    assert [f["archive"] for f in doc["files"]] == ["python/shared/__init__.py"]
    assert rules(doc)["libs/shared/pyproject.toml"] == "not importable code"
    assert [s["path"] for s in doc["secrets"]] == ["shared/.env"]  # layers go through the same secret rules
    assert doc["secrets"][0]["allow_with"] == "layers.common.allow_secrets"
    unknown = relay("build", "--explain", "nope", cwd=real_app)
    assert unknown.code == 12 and "nope" in unknown.stderr
