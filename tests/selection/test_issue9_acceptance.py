"""Issue 9's acceptance as one app: the README's worked example, built the way a user builds it.

The app is laid out like the real ones the issue tried (`app_helpers.real_app_files`): handlers
inside one `app/` package, `pyproject.toml` with its dependencies and a `common` group for a
shared layer, the app's own `uv.lock` (or poetry's `pyproject.toml` + `poetry.lock`), in a git
work tree next to docs, tests, infrastructure code, a virtualenv, `.relay/`, a previous `dist/`,
git-ignored files and files that look like secrets. Its `relay.toml` is the README's worked
example, read from the README, so the documented config is the tested one.

Everything goes through the CLI (`builder.cli.main`), with real pip, uv and git, offline: the
wheelhouse holds newer versions than the app pins (greeting 1.1 over the pinned 1.0, money 2.2
over 2.1), so a resolution that ignored the app's lock would differ.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
import zipfile
from pathlib import Path

import pytest
from app_helpers import APP_FILES, SECRETS_IN_APP, commit_all, dist_state, git, real_app_files, remove_secrets, zip_names
from bundle_helpers import make_wheel, write_tree
from lock_helpers import PEP621_PYPROJECT, POETRY_PYPROJECT, poetry_lock, uv_lock, wheel_folder
from runtime_helpers import build_wheel, fake_elf

from builder import schemas
from builder.bundle.pythons import find_python
from builder.config import load_project
from builder.lock.lockfile import read_lock
from builder.lock.resolvers import find_uv
from builder.registry.signing import generate_key_file
from builder.runtime.interpreter import emulated_python, host_architecture

pytestmark = pytest.mark.skipif(find_uv() is None, reason="the app's uv.lock is locked with uv")

README = Path(__file__).resolve().parents[2] / "README.md"
EXAMPLE_HEADING = "### Worked example: a package folder + a shared layer from pyproject + uv.lock"
PINS = {"greeting": "1.0", "money": "2.1"}  # the app's lock; the wheelhouse also has greeting 1.1, money 2.2
BILLING = """\
import money
from app.common.money import cents


def handle(event, context):
    return {"due": cents(event.get("amount", 2)), "fee": money.cents(0.3)}
"""
BUNDLES = ("orders.zip", "billing.zip", "layer-common-x86_64.zip", "layer-common-arm64.zip")
MACHINES = {"orders": "x86_64", "billing": "aarch64"}


def readme_config() -> str:
    """The worked example's relay.toml, exactly as the README shows it."""
    text = README.read_text(encoding="utf-8")
    assert EXAMPLE_HEADING in text, "the README's worked example moved: update EXAMPLE_HEADING"
    after = text.split(EXAMPLE_HEADING, 1)[1]
    found = re.search(r"```toml\n(.*?)```", after, re.S)
    assert found, "the worked example has no ```toml block"
    return found.group(1)


def variant(config: str, old: str, new: str, count: int) -> str:
    assert config.count(old) == count, (old, config)
    return config.replace(old, new)


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip's and uv's only index is the wheelhouse; relay's cache is the test's."""
    house = tmp_path / "wheelhouse"
    house.mkdir()
    for name, value in (("PIP_FIND_LINKS", house), ("PIP_NO_INDEX", "1"), ("UV_FIND_LINKS", house),
                        ("UV_NO_INDEX", "1"), ("UV_OFFLINE", "1"), ("RELAY_CACHE_DIR", tmp_path / "cache")):
        monkeypatch.setenv(name, str(value))
    for name in ("QEMU_LD_PREFIX", "SOURCE_DATE_EPOCH", "RELAY_SIGNING_KEY"):
        monkeypatch.delenv(name, raising=False)
    return house


def make_app(root: Path, house: Path, *, style: str = "uv", dependencies: dict[str, str] | None = None,
             pins: dict[str, str] | None = None, config: str | None = None, files: dict[str, str] | None = None) -> Path:
    """The issue's app in a git work tree (everything not ignored committed), secrets still in it."""
    wheels = wheel_folder(house)
    dependencies = dependencies if dependencies is not None else {"greeting": ">=1.0"}
    pins = pins if pins is not None else PINS
    tree = real_app_files()
    del tree["requirements.in"]  # this app declares its dependencies in pyproject.toml only
    tree["app/handlers/billing/handler.py"] = BILLING
    config = config if config is not None else readme_config()
    if style == "uv":
        listed = ",\n    ".join(f'"{name}{spec}"' for name, spec in dependencies.items())
        tree["pyproject.toml"] = PEP621_PYPROJECT.format(version="0.3.1", dependencies=listed)
        tree["uv.lock"] = uv_lock(pins, wheels, version="0.3.1")
    else:
        listed = "\n".join(f'{name} = "{spec}"' for name, spec in dependencies.items())
        tree["pyproject.toml"] = POETRY_PYPROJECT.format(version="0.3.1", dependencies=listed)
        tree["poetry.lock"] = poetry_lock(pins, wheels)
        config = variant(config, 'pins = "uv.lock"', 'pins = "poetry.lock"', 3)
    tree["relay.toml"] = config
    write_tree(root, {**tree, **(files or {})})
    git(root, "init", "-q", "-b", "main")
    commit_all(root)
    return root


def lock(root: Path, relay, *args: str) -> None:
    done = relay("lock", "--resolver", "uv", *args, cwd=root)
    assert done.code == 0, done


def locked(root: Path, target: str) -> dict[str, str]:
    return {r.name: r.version for r in read_lock(root / "locks" / f"{target}.txt").requirements}


def app_lock_versions(root: Path, name: str) -> dict[str, str]:
    """What the app's own uv.lock / poetry.lock pins (registry packages, not the project itself)."""
    with open(root / name, "rb") as fh:
        packages = tomllib.load(fh)["package"]
    return {p["name"]: p["version"] for p in packages if p.get("source", {}).get("virtual") is None}


def digests(root: Path) -> dict[str, str]:
    return {name: hashlib.sha256((root / "dist" / name).read_bytes()).hexdigest() for name in BUNDLES}


def manifest(root: Path, name: str) -> dict:
    return json.loads((root / "dist" / f"{name}.manifest.json").read_text(encoding="utf-8"))


def check_of(run, name: str) -> dict:
    [bundle] = [b for b in run.json()["bundles"] if b["name"] == name and b["kind"] == "function"]
    return bundle["import_check"]


# -- the README's example is the config tested here ---------------------------------------------------


def test_the_readme_example_is_a_valid_config_with_the_issues_keys(tmp_path: Path, offline: Path) -> None:
    root = make_app(tmp_path / "shop", offline)
    project = load_project(root / "relay.toml")
    config = tomllib.loads(readme_config())
    assert config["functions"]["orders"]["packages"] == ["app"]
    assert {f["requirements"] for f in config["functions"].values()} == {"pyproject.toml"}
    assert {f["pins"] for f in config["functions"].values()} == {"uv.lock"}
    assert config["layers"]["common"] == {"requirements": "pyproject.toml#common", "pins": "uv.lock"}
    assert project.name == "shop"


# -- secrets: refused, named, nothing written ---------------------------------------------------------


def test_with_no_secret_allowed_the_build_refuses_naming_each_and_dist_is_untouched(tmp_path: Path, offline: Path,
                                                                                     relay) -> None:
    root = make_app(tmp_path / "shop", offline)
    lock(root, relay)
    before = dist_state(root)
    assert before == {"orders.zip": hashlib.sha256(b"a previous build").hexdigest(),
                      "index.json": hashlib.sha256(b"{}\n").hexdigest()}

    run = relay("build", cwd=root)

    assert run.code == 4, run
    for rel in SECRETS_IN_APP:  # .env, id_rsa, a *.key PEM key, and a PEM key in a .txt
        assert rel in run.stderr, (rel, run.stderr)
    assert "allow_secrets" in run.stderr
    assert dist_state(root) == before, "nothing half-written in dist/"


# -- what ships, the app's versions, the same bytes every time -----------------------------------------


@pytest.mark.parametrize(("style", "pins_file"), [("uv", "uv.lock"), ("poetry", "poetry.lock")])
def test_each_zip_holds_app_and_its_locked_requirements_with_the_apps_versions_and_the_same_bytes(
        tmp_path: Path, offline: Path, relay, monkeypatch: pytest.MonkeyPatch, style: str, pins_file: str) -> None:
    root = make_app(tmp_path / "shop", offline, style=style)
    remove_secrets(root)
    commit_all(root)
    lock(root, relay)

    # the locked versions are the app's own, not the newest in the index
    assert locked(root, "function-orders") == locked(root, "function-billing") == {"greeting": "1.0"}
    assert locked(root, "layer-common") == {"money": "2.1"}
    pinned = app_lock_versions(root, pins_file)
    for target in ("function-orders", "function-billing", "layer-common"):
        assert {name: pinned[name] for name in locked(root, target)} == locked(root, target)

    explain = relay("build", "--explain", "orders", "--json", cwd=root)
    assert explain.code == 0, explain
    rules = {item["path"]: item["rule"] for item in [*explain.json()["files"], *explain.json()["dropped"]]}
    assert rules["app/local_settings.py"] == "ignored by git" and rules["docs/"] == "outside packages"
    assert rules["dist/"] == rules[".relay/"] == rules[".venv/"] == "always out"

    builds = []
    for index, previous_dist in enumerate((False, False, True)):  # two cold builds, then one over dist/
        monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / f"cache{index}"))  # fresh caches: nothing reused
        if not previous_dist:
            for path in sorted((root / "dist").glob("*"), reverse=True):
                path.unlink()
        else:
            (root / "dist" / "big-old-build.zip").write_bytes(b"x" * 4096)
        run = relay("build", "--json", cwd=root)
        assert run.code == 0, run
        builds.append(digests(root))
    assert builds[0] == builds[1] == builds[2]

    for name in ("orders", "billing"):
        names = zip_names(root / "dist" / f"{name}.zip")
        code = {n for n in names if n.startswith("app/")}
        assert code == APP_FILES  # app/** as the patterns leave it
        assert {n.split("/")[0] for n in names} == {"app", "greeting", "greeting-1.0.dist-info"}, sorted(names)
        doc = manifest(root, name)
        assert schemas.errors("manifest", doc) == []
        assert doc["source"]["packages"] == ["app"] and doc["lock"]["packages"] == ["greeting==1.0"]
    for architecture in ("x86_64", "arm64"):
        names = zip_names(root / "dist" / f"layer-common-{architecture}.zip")
        assert {n.split("/")[1] for n in names} == {"money", "money-2.1.dist-info"}, sorted(names)
        assert all(n.startswith("python/") for n in names)

    if style == "uv":  # the control: without the app's pins the same resolver picks the newest wheels
        for path in (root / "locks").iterdir():
            path.unlink()
        unpinned, dropped = re.subn(r'^pins = "uv.lock".*\n', "", readme_config(), flags=re.M)
        assert dropped == 3
        (root / "relay.toml").write_text(unpinned, encoding="utf-8")
        lock(root, relay)
        assert locked(root, "function-orders") == {"greeting": "1.1"}
        assert locked(root, "layer-common") == {"money": "2.2"}


# -- arm64 on this x86_64 host: an absent import fails the build ---------------------------------------


@pytest.mark.skipif(host_architecture() != "x86_64", reason="arm64 is the foreign architecture here")
@pytest.mark.skipif(emulated_python("python3.12", "aarch64") is not None, reason="qemu-user imports it here")
def test_an_arm64_function_whose_lock_lacks_an_import_fails_and_passes_statically_once_locked(
        tmp_path: Path, offline: Path, relay) -> None:
    make_wheel(offline, "colour", "1.0", {"colour/__init__.py": "NAME = 'red'\n"})
    root = make_app(tmp_path / "shop", offline, files={"app/handlers/billing/handler.py": "import colour\n" + BILLING})
    remove_secrets(root)
    commit_all(root)
    lock(root, relay)

    run = relay("build", cwd=root)

    assert run.code == 4, run
    assert "no module named 'colour'" in run.stderr and "app/handlers/billing/handler.py" in run.stderr
    assert "not in the lock" in run.stderr
    assert not (root / "dist/billing.zip").exists()

    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"greeting>=1.0"', '"greeting>=1.0",\n    "colour>=1"'))
    (root / "uv.lock").write_text(uv_lock({**PINS, "colour": "1.0"}, wheel_folder(offline), version="0.3.1"))
    assert relay("lock", "--check", cwd=root).code == 6  # the requirements changed: relay's lock is stale
    lock(root, relay)
    run = relay("build", "--json", cwd=root)
    assert run.code == 0, run
    assert check_of(run, "billing")["status"] == "static"
    assert "arm64 bundle on an x86_64 host" in check_of(run, "billing")["note"]
    if find_python("3.12") is not None:
        assert check_of(run, "orders")["status"] == "imported"


# -- python3.14: lock (uv), build, publish; cp314 wheels for both machines -----------------------------


REGISTRY = """
[registry]
bucket = "relay-artifacts"
prefix = "relay"
region = "us-east-1"
role = "{role}"

[registry.signing]
kind = "ed25519"
key = "{key}"

[[registry.trusted_keys]]
keyid = "{keyid}"
public_key = "{key}.pub"
"""


def test_python314_locks_builds_and_publishes_with_cp314_wheels_for_both_machines(tmp_path: Path, offline: Path,
                                                                                   relay, aws) -> None:
    for machine in ("x86_64", "aarch64"):
        build_wheel(offline, "fastmath", "1.0", {
            "fastmath/__init__.py": "from fastmath._core import add\n",
            f"fastmath/_core.cpython-314-{machine}-linux-gnu.so": fake_elf(machine),
        }, tag=f"cp314-cp314-manylinux_2_17_{machine}")
    # a cp313 wheel of the same version sits in the index too: it must not be taken for 3.14
    build_wheel(offline, "fastmath", "1.0", {"fastmath/__init__.py": ""}, tag="cp313-cp313-manylinux_2_17_x86_64")
    key = generate_key_file(tmp_path / "keys" / "relay.key")  # outside the repository
    config = variant(readme_config(), 'runtime = "python3.12"', 'runtime = "python3.14"', 1)
    config += REGISTRY.format(role=aws.role_arn("registry"), key=tmp_path / "keys" / "relay.key", keyid=key.keyid)
    uses_fastmath = "import fastmath\n"
    root = make_app(tmp_path / "shop", offline, config=config, dependencies={"greeting": ">=1.0", "fastmath": ">=1"},
                    pins={**PINS, "fastmath": "1.0"}, files={
                        "app/handlers/billing/handler.py": uses_fastmath + BILLING,
                        "app/handlers/orders.py": uses_fastmath + real_app_files()["app/handlers/orders.py"],
                    })
    remove_secrets(root)
    commit_all(root)
    aws.client("registry", "s3").create_bucket(Bucket="relay-artifacts")

    lock(root, relay)
    text = (root / "locks/function-orders.txt").read_text(encoding="utf-8")
    assert "runtime=python3.14" in text and "fastmath==1.0" in text
    commit_all(root)
    run = relay("build", "--json", cwd=root)
    assert run.code == 0, run
    for name, machine in MACHINES.items():
        if find_python("3.14") is None or machine != "x86_64":
            assert check_of(run, name)["status"] == "static", check_of(run, name)
        with zipfile.ZipFile(root / "dist" / f"{name}.zip") as archive:
            names = archive.namelist()
            tags = archive.read("fastmath-1.0.dist-info/WHEEL").decode()
        assert f"fastmath/_core.cpython-314-{machine}-linux-gnu.so" in names
        assert f"Tag: cp314-cp314-manylinux_2_17_{machine}" in tags
        doc = manifest(root, name)
        assert doc["runtime"] == "python3.14" and "fastmath==1.0" in doc["lock"]["packages"]

    published = relay("publish", "--version", "1.0.0", "--json", cwd=root)
    assert published.code == 0, published
    assert published.json()["status"] == "published"
    s3 = aws.client("registry", "s3")
    release = json.loads(s3.get_object(Bucket="relay-artifacts", Key="relay/shop/releases/1.0.0.json")["Body"].read())
    assert release["git"]["dirty"] is False
    assert "python3.14" in json.dumps(release)


# -- provenance: a shipped untracked file makes the build dirty -----------------------------------------


def test_a_shipped_untracked_file_makes_the_manifest_dirty(tmp_path: Path, offline: Path, relay) -> None:
    root = make_app(tmp_path / "shop", offline)
    remove_secrets(root)
    lock(root, relay)
    commit_all(root)
    assert relay("build", cwd=root).code == 0
    clean = manifest(root, "orders")
    assert clean["git"]["dirty"] is False and clean["git"]["commit"] == git(root, "rev-parse", "HEAD").strip()
    assert clean["source"]["root"] == "."

    (root / "docs/new-page.md").write_text("not shipped\n")  # untracked, not shipped: still clean
    (root / "app/common/tax.py").write_text("RATE = 0.2\n")  # untracked and shipped
    run = relay("build", cwd=root)
    assert run.code == 0, run
    for name in ("orders", "billing"):
        assert "app/common/tax.py" in zip_names(root / "dist" / f"{name}.zip")
        assert manifest(root, name)["git"]["dirty"] is True
