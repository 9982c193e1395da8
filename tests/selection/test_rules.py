"""The selection rules on real files, without building: patterns, packages, secrets, git."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from app_helpers import PEM, commit_all, git
from bundle_helpers import write_tree

from builder.bundle.gitinfo import git_view
from builder.bundle.selection import SecretsRefused, refuse_secrets, select_function, select_layer
from builder.config import load_project
from builder.errors import ConfigError


def project(root: Path, functions: str, files: dict[str, str], app: str = ""):
    write_tree(root, {"relay.toml": textwrap.dedent(f"""\
        [app]
        name = "t"
        runtime = "python3.12"
        {app}
        """) + textwrap.dedent(functions), **files})
    return load_project(root / "relay.toml")


def shipped(proj, name: str = "fn") -> dict[str, str]:
    selection = select_function(proj, proj.functions[name], git_view(proj.root))
    return {p.archive: str(p.rule.why) for p in selection.files}


def test_source_ships_contents_at_the_root_and_packages_under_their_names(tmp_path):
    proj = project(tmp_path, """
        [functions.fn]
        source = "svc"
        packages = ["src/app", "lib"]
        handler = "app.main.handle"
        """, {"svc/src/app/__init__.py": "", "svc/src/app/main.py": "", "svc/lib/__init__.py": "",
              "svc/setup.cfg": "", "svc/src/other/x.py": ""})
    assert shipped(proj) == {"app/__init__.py": "package", "app/main.py": "package", "lib/__init__.py": "package"}
    selection = select_function(proj, proj.functions["fn"], git_view(proj.root))
    assert selection.root == "svc" and selection.packages == ("svc/lib", "svc/src/app")


@pytest.mark.parametrize("packages, message", [
    ('["app", "app/sub"]', "overlap"),
    ('["a/app", "b/app"]', "would both ship as app/"),
    ('["../elsewhere"]', "inside the source root"),
    ('["missing"]', "expected a folder at missing"),
])
def test_ambiguous_or_wrong_packages_are_config_errors_naming_the_key(tmp_path, packages, message):
    # Caught when the config loads (the schema refuses '..') or when the selection is made.
    with pytest.raises(ConfigError) as caught:
        proj = project(tmp_path, f"""
            [functions.fn]
            packages = {packages}
            handler = "app.main.handle"
            """, {"app/sub/__init__.py": "", "a/app/__init__.py": "", "b/app/__init__.py": "", "elsewhere/x.py": ""})
        select_function(proj, proj.functions["fn"], git_view(proj.root))
    assert "functions.fn.packages" in caught.value.message and message in caught.value.message
    assert caught.value.exit_code == 3


def test_include_whitelists_and_the_function_can_re_include_what_app_excludes(tmp_path):
    proj = project(tmp_path, """
        [functions.fn]
        source = "."
        handler = "app.main.handle"
        include = ["app/**", "config/*.json"]
        exclude = ["!app/fixtures/keep.json"]
        """, {"app/main.py": "", "app/fixtures/big.json": "", "app/fixtures/keep.json": "", "config/a.json": "",
              "config/a.yaml": "", "docs/x.md": ""}, app='exclude = ["app/fixtures/*"]')
    files = shipped(proj)
    assert set(files) == {"app/main.py", "app/fixtures/keep.json", "config/a.json"}
    assert files["app/main.py"] == "include" and files["app/fixtures/keep.json"] == "re-included"


def test_secret_names_and_contents(tmp_path):
    proj = project(tmp_path, """
        [functions.fn]
        source = "src"
        handler = "main.handle"
        allow_secrets = ["certs/ca.pem"]
        """, {"src/main.py": "", "src/id_rsa.pub": "ssh-ed25519 AAAA", "src/id_ed25519": "x", "src/.envrc": "x",
              "src/certs/ca.pem": "x", "src/.aws/credentials": "x", "src/.netrc": "x", "src/.pypirc": "x",
              "src/.npmrc": "//registry.npmjs.org/:_authToken=abc\n", "src/pkg/.npmrc": "registry=https://x\n",
              "src/data/blob.bin": "header\n" + PEM, "src/server.key": "x"})
    selection = select_function(proj, proj.functions["fn"], git_view(proj.root))
    refused = {s.rel for s in selection.secrets}
    assert refused == {"id_ed25519", ".envrc", ".aws/credentials", ".netrc", ".pypirc", ".npmrc", "data/blob.bin",
                       "server.key"}
    kept = {p.rel: str(p.rule.why) for p in selection.files}
    assert kept["certs/ca.pem"] == "allowed secret" and kept["id_rsa.pub"] == "source" and "pkg/.npmrc" in kept
    with pytest.raises(SecretsRefused) as caught:
        refuse_secrets([selection])
    assert caught.value.exit_code == 4 and "data/blob.bin" in caught.value.message
    assert "BEGIN" not in caught.value.message and "functions.fn.allow_secrets = [" in caught.value.hint


def test_git_ignored_files_out_unless_re_included_and_dirtiness_per_bundle(tmp_path):
    proj = project(tmp_path, """
        [functions.fn]
        source = "fn"
        handler = "main.handle"
        exclude = ["!generated/"]

        [functions.other]
        source = "other"
        handler = "main.handle"
        """, {"fn/main.py": "", "fn/generated/schema.py": "", "fn/debug.log": "", "other/main.py": "",
              ".gitignore": "generated/\n*.log\n"})
    git(tmp_path, "init", "-q", "-b", "main")
    commit_all(tmp_path)
    view = git_view(tmp_path)
    fn = select_function(proj, proj.functions["fn"], view)
    assert {p.rel: str(p.rule.why) for p in fn.files} == {"main.py": "source", "generated/schema.py": "re-included"}
    assert {d.path: str(d.rule.why) for d in fn.dropped} == {"fn/debug.log": "ignored by git"}
    # a shipped ignored file is not what the commit holds: dirty; the other function is clean
    assert view.info_for(p.path for p in fn.files).dirty is True
    other = select_function(proj, proj.functions["other"], view)
    assert view.info_for(p.path for p in other.files).dirty is False
    (tmp_path / "other/main.py").write_text("changed = True\n")
    assert git_view(tmp_path).info_for(p.path for p in other.files).dirty is True


def test_layer_packages_src_layout_and_always_out(tmp_path):
    proj = project(tmp_path, """
        [functions.fn]
        source = "fn"
        handler = "main.handle"

        [layers.common]
        packages = ["libs/shared", "libs/single"]
        exclude = ["tests/"]
        """, {"fn/main.py": "", "libs/shared/src/shared/__init__.py": "", "libs/shared/src/shared/tests/t.py": "",
              "libs/shared/src/helpers.py": "", "libs/shared/src/setup.py": "", "libs/shared/README.md": "",
              "libs/single/__init__.py": "", "libs/single/node_modules/x.js": "", "libs/single/.venv/pyvenv.cfg": ""})
    selection = select_layer(proj, proj.layers["common"], git_view(proj.root))
    assert [p.archive for p in selection.files] == ["python/helpers.py", "python/shared/__init__.py",
                                                    "python/single/__init__.py"]
    dropped = {d.path: str(d.rule.why) for d in selection.dropped}
    assert dropped["libs/shared/src/shared/tests/"] == "exclude"
    assert dropped["libs/single/node_modules/"] == "always out" and dropped["libs/single/.venv/"] == "always out"
    assert dropped["libs/shared/README.md"] == "not importable code"
