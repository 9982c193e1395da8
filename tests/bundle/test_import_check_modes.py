"""The import check keeps failing a handler that imports a module missing from the lock, in every mode.

Issue 13 made the check cheap: a bundle is built once per build key and shared
by every function with the same inputs, its verdict is kept by what it
depends on (`builder.bundle.cache.Verdicts`), layers stay unpacked in relay's
cache, and bundles, checks and zips overlap (`-j`). None of that may let a
missing dependency through. The app here is laid out like a real one: one
`product/` package shipped by five handlers, a layer with a locked wheel,
a .gitignore, docs/, infrastructure code and tests the bundles leave out.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from bundle_helpers import make_wheel, write_lock, write_tree

from builder.bundle.pythons import find_python
from builder.errors import BuildFailed
from builder.runtime.interpreter import host_architecture

RUNTIME = "python3.12"
HANDLERS = ("create", "get", "list", "update", "delete")
MISSING = "import greeting  # in the wheelhouse, but in no lock\n"

pytestmark = [
    pytest.mark.skipif(find_python(RUNTIME.removeprefix("python")) is None, reason=f"{RUNTIME} is not installed here"),
    pytest.mark.skipif(host_architecture() != "x86_64", reason="arm64 is the architecture checked statically here"),
]


@pytest.fixture
def house(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """pip's only index, with `money` (locked for the layer) and `greeting` (locked nowhere)."""
    folder = tmp_path / "wheelhouse"
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    return {
        "money": make_wheel(folder, "money", "2.1", {"money/__init__.py": "def cents(a):\n    return round(a * 100)\n"}),
        "greeting": make_wheel(folder, "greeting", "1.0", {"greeting/__init__.py": "def hello(n):\n    return n\n"}),
    }


def products_app(root: Path, house: dict[str, Path], *, architecture: str = "x86_64",
                 handlers: tuple[str, ...] = HANDLERS, same_handler: bool = False) -> Path:
    """Functions shipping the `product` package (one bundle for all), handler `product.handlers.<name>.handler`.

    `same_handler`: every function runs `product.handlers.create.handler` (identical bundle and handler).
    """
    functions = "".join(textwrap.dedent(f"""
        [functions.{name}]
        packages = ["product"]
        handler = "product.handlers.{'create' if same_handler else name}.handler"
        architecture = "{architecture}"
        layers = ["common"]
        """) for name in handlers)
    files = {
        "relay.toml": textwrap.dedent(f"""\
            [app]
            name = "products"
            runtime = "{RUNTIME}"

            [layers.common]
            requirements = "layers/common/requirements.in"
            """) + functions,
        "pyproject.toml": "[project]\nname = 'products'\nversion = '1.0.0'\nrequires-python = '>=3.12'\n",
        ".gitignore": ".venv/\n*.log\ncdk.out/\n",
        "README.md": "# products\n",
        "docs/index.md": "How the catalogue works.\n",
        "infrastructure/app.py": "import aws_cdk  # infra code, never shipped\n",
        "tests/test_models.py": "import pytest\n",
        "layers/common/requirements.in": "money\n",
        "product/__init__.py": "",
        "product/models.py": "import money\n\n\ndef price(amount):\n    return money.cents(amount)\n",
        "product/handlers/__init__.py": "",
        "product/handlers/debug.log": "a local run\n",
    }
    for name in HANDLERS:
        files[f"product/handlers/{name}.py"] = handler_code(name)
    write_tree(root, files)
    write_lock(root / "layers/common/requirements.in", [("money", "2.1", house["money"])])
    return root


def handler_code(name: str, extra: str = "") -> str:
    return f"{extra}from product import models\n\n\ndef handler(event, context):\n    return {{'{name}': models.price(1)}}\n"


def add_missing_import(root: Path, name: str = "create") -> None:
    (root / f"product/handlers/{name}.py").write_text(handler_code(name, MISSING), encoding="utf-8")


def checks(run) -> dict[str, dict]:
    return {b["name"]: b["import_check"] for b in run.json()["bundles"] if b["kind"] == "function"}


def assert_fails_naming_greeting(run, root: Path, before: bytes | None = None) -> None:
    """Exit 4 naming the module; the failing bundle never reached dist/ (`before`: what an earlier build left)."""
    assert run.code == BuildFailed.exit_code == 4, run
    assert "no module named 'greeting'" in run.stderr
    assert "not in the lock" in run.stderr
    zip_path = root / "dist/create.zip"
    assert (zip_path.read_bytes() if zip_path.exists() else None) == before


def forget_last_build(root: Path) -> None:
    """Make the next `relay build` run the pipeline, as any edit would (the no-op fast path is another test's)."""
    (root / "dist/.relay-build.json").unlink()


# -- every mode fails the build ------------------------------------------------------------------------


def test_first_build_fails_naming_the_missing_module(tmp_path: Path, house, relay) -> None:
    root = products_app(tmp_path / "app", house)
    add_missing_import(root)

    assert_fails_naming_greeting(relay("build", cwd=root), root)


def test_a_cached_pass_does_not_hide_a_new_missing_import(tmp_path: Path, house, relay) -> None:
    root = products_app(tmp_path / "app", house)
    assert relay("build", cwd=root).code == 0
    forget_last_build(root)
    assert {c["source"] for c in checks(relay("build", "--json", cwd=root)).values()} == {"cache"}
    passed = (root / "dist/create.zip").read_bytes()

    add_missing_import(root)  # a new bundle digest: no verdict is kept for it

    assert_fails_naming_greeting(relay("build", cwd=root), root, before=passed)


def test_five_handlers_share_one_bundle_and_the_one_that_misses_a_module_fails(tmp_path: Path, house, relay) -> None:
    root = products_app(tmp_path / "app", house)
    built = relay("build", cwd=root)
    assert built.code == 0, built
    assert built.stderr.count("same inputs as a bundle built in this run, shared") == 4
    digests = {json.loads((root / f"dist/{name}.manifest.json").read_text())["sha256"] for name in HANDLERS}
    assert len(digests) == 1  # one package, five handlers: the same bytes
    forget_last_build(root)
    passing = relay("build", "--no-cache", "--json", cwd=root)
    # Each handler is imported: their verdicts differ by handler, so none stands in for another's.
    assert [c["source"] for c in checks(passing).values()] == ["checked"] * 5

    add_missing_import(root, "delete")  # the last in config order, sharing the bundle with four that pass

    run = relay("build", cwd=root)
    assert run.code == 4, run
    assert "delete: importing product.handlers.delete.handler failed: no module named 'greeting'" in run.stderr


def test_functions_with_the_same_bundle_and_handler_are_checked_once_and_all_fail(tmp_path: Path, house,
                                                                                    relay) -> None:
    root = products_app(tmp_path / "app", house, handlers=("api", "worker", "replay"), same_handler=True)
    passing = relay("build", "--json", cwd=root)
    assert passing.code == 0, passing
    assert sorted(c["source"] for c in checks(passing).values()) == ["checked", "shared", "shared"]
    assert "same bundle and handler as another function" in relay("build", "--no-cache", cwd=root).stdout
    passed = {name: (root / "dist" / f"{name}.zip").read_bytes() for name in ("api", "worker", "replay")}

    add_missing_import(root)

    run = relay("build", cwd=root)
    assert run.code == 4, run
    assert "no module named 'greeting'" in run.stderr
    assert {name: (root / "dist" / f"{name}.zip").read_bytes() for name in passed} == passed  # none reached dist/


def test_parallel_build_fails_naming_the_missing_module(tmp_path: Path, house, relay) -> None:
    root = products_app(tmp_path / "app", house)
    add_missing_import(root, "update")

    run = relay("build", "-j", "2", cwd=root)

    assert run.code == 4, run
    assert "update: importing product.handlers.update.handler failed: no module named 'greeting'" in run.stderr


def test_parallel_build_that_passes_reports_cpu_and_jobs(tmp_path: Path, house, relay) -> None:
    root = products_app(tmp_path / "app", house)

    run = relay("build", "-j", "2", "--json", cwd=root)

    assert run.code == 0, run
    doc = run.json()
    assert doc["jobs"] == 2 and doc["cpu_seconds"] > 0
    forget_last_build(root)
    text = relay("build", "-j", "2", "--no-cache", cwd=root).stdout
    assert "s CPU, 2 at once)" in text


def test_arm64_checked_statically_fails_naming_the_missing_module_cached_or_not(tmp_path: Path, house, relay) -> None:
    root = products_app(tmp_path / "app", house, architecture="arm64", handlers=("create", "get"))
    passing = relay("build", "--json", cwd=root)
    assert passing.code == 0, passing
    assert {c["status"] for c in checks(passing).values()} == {"static"}
    forget_last_build(root)
    assert {c["source"] for c in checks(relay("build", "--json", cwd=root)).values()} == {"cache"}

    add_missing_import(root)

    run = relay("build", cwd=root)
    assert run.code == 4, run
    assert "no module named 'greeting'" in run.stderr


# -- an unchanged function is not checked again; a tampered verdict is ----------------------------------


def test_an_unchanged_rebuild_takes_every_verdict_from_the_cache(tmp_path: Path, house, relay) -> None:
    root = products_app(tmp_path / "app", house)
    first = relay("build", "--json", cwd=root)
    assert first.code == 0, first
    (root / "docs/index.md").write_text("Docs changed: no bundle ships them.\n", encoding="utf-8")
    forget_last_build(root)

    again = relay("build", "--json", cwd=root)

    assert again.code == 0, again
    assert [c["source"] for c in checks(again).values()] == ["cache"] * 5
    assert [c["note"] for c in checks(again).values()] == [c["note"] for c in checks(first).values()]
    forget_last_build(root)
    assert "imported (verdict from the cache)" in relay("build", cwd=root).stdout


def verdict_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache/verdicts").glob("*.json"))


def test_an_edited_verdict_is_not_trusted_and_is_checked_again(tmp_path: Path, house, relay) -> None:
    root = products_app(tmp_path / "app", house, handlers=("create",))
    assert relay("build", cwd=root).code == 0
    [entry] = verdict_files(tmp_path)
    doc = json.loads(entry.read_text())
    entry.write_text(json.dumps({**doc, "note": "under a Python that was never run"}))
    forget_last_build(root)

    run = relay("build", "--json", cwd=root)

    assert run.code == 0, run
    [check] = checks(run).values()
    assert check["source"] == "checked" and "never run" not in check["note"]
    assert json.loads(entry.read_text()) == doc  # rewritten by the check that ran


@pytest.mark.parametrize("tamper", ["forged", "truncated"])
def test_a_verdict_filed_for_a_failing_bundle_does_not_pass_it(tmp_path: Path, house, relay, tamper: str) -> None:
    """Someone files a "passed" entry under the key of a bundle that fails: the build still fails."""
    root = products_app(tmp_path / "app", house, handlers=("create",))
    assert relay("build", cwd=root).code == 0
    [good] = verdict_files(tmp_path)
    good_doc = json.loads(good.read_text())
    add_missing_import(root)
    assert relay("build", cwd=root).code == 4
    assert verdict_files(tmp_path) == [good]  # a failure is never kept

    from builder.bundle.cache import Verdicts

    bad_inputs = {**good_doc["inputs"], "bundle": failing_bundle_digest(tmp_path, good_doc["inputs"]["bundle"])}
    forged = tmp_path / "cache/verdicts" / f"{Verdicts.key(bad_inputs)}.json"
    if tamper == "forged":  # the right inputs and a passing status, but not the checksum relay writes
        forged.write_text(json.dumps({**good_doc, "inputs": bad_inputs}))
    else:
        forged.write_text(good.read_text()[:40])

    run = relay("build", cwd=root)

    assert run.code == 4, run
    assert "no module named 'greeting'" in run.stderr


def failing_bundle_digest(tmp_path: Path, good: str) -> str:
    """The content digest of the bundle that failed its check: the build cache keeps it (dist/ never got it)."""
    digests = {json.loads(p.read_text())["content_digest"] for p in (tmp_path / "cache/builds").glob("*/stats.json")}
    layers = {json.loads(p.read_text())["content_digest"]
              for p in (tmp_path / "app/dist").glob("layer-*.manifest.json")}
    [bad] = digests - layers - {good}
    return bad


# -- layers are unpacked once, kept by digest, read-only ----------------------------------------------


def test_the_layer_is_unpacked_once_for_every_function_and_kept_read_only(tmp_path: Path, house, relay) -> None:
    root = products_app(tmp_path / "app", house)
    run = relay("build", "--json", cwd=root)
    assert run.code == 0, run
    bundles = run.json()["bundles"]
    # Trees are named by the bundle's content digest (its files), which the manifest records.
    layer, function = (next(json.loads(Path(b["manifest"]).read_text())["content_digest"] for b in bundles
                            if b["kind"] == kind) for kind in ("layer", "function"))

    trees = {p.name for p in (tmp_path / "cache/trees").iterdir() if not p.name.startswith("runtime-")}

    assert trees == {layer, function}  # one layer tree, one bundle tree for five handlers
    money = tmp_path / "cache/trees" / layer / "python/money/__init__.py"
    assert money.is_file() and not money.stat().st_mode & 0o222
    assert not list((tmp_path / "cache/trees").rglob("__pycache__"))  # bytecode goes to the cache's pycache/
