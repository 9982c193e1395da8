"""Issue 12, item 4: every exit code in the README's table has a real case, run through the real CLI.

The table is read from README.md ("Exit codes"). Every case below runs relay
as a user does (`main()` with its one error handler, or a `relay` process for
signals and pipes) against a project laid out like a real app or against the
moto accounts, and must exit with its code. A code in the table that no case
exercises fails `test_every_code_in_the_table_has_a_case`, and so does a case
whose code the table does not list. Unknown names exit 12 in every command
family that takes names (the issue found 3 in some and 12 in others).

Worlds, so that each case pays only for the set-up it needs:
- "app": a built project with no AWS (build/lock, invoke, local), one per module;
  cases that change it work on a copy;
- "aws": the shop app published to the moto registry and promoted to staging,
  the registry and promotion families (one test runs them in order, since they
  share the accounts);
- "process": a relay process signalled (Ctrl-C mid-canary) or writing into a
  closed pipe.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "promote"))

from promote_helpers import BUCKET, CANARY, Shop, handler_source, new_shop

from builder.bundle.pipeline import build_project
from builder.config import load_project
from builder.local.server import free_port

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = ("build/lock", "registry", "promote", "local", "invoke")
# Ctrl-C repetitions: 3 in the suite, more for an acceptance run (as in tests/adversarial).
ROUNDS = int(os.environ.get("RELAY_RACE_ROUNDS", "3"))
MAIN = "import sys; from builder.cli import main; main(sys.argv[1:])"


def readme_codes() -> dict[int, str]:
    """code -> meaning, from the table under "## Exit codes" in README.md."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", section, flags=re.MULTILINE)
    assert rows, "no exit code table found under '## Exit codes' in README.md"
    return {int(code): meaning for code, meaning in rows}


# -- the cases ---------------------------------------------------------------------------------------


@attrs.frozen
class Case:
    code: int
    family: str
    what: str
    world: str
    run: Callable
    says: str = ""  # what stderr must say (the path, the name, ...)

    @property
    def id(self) -> str:
        return f"{self.code}-{self.run.__name__}"


CASES: list[Case] = []


def case(code: int, family: str, what: str, *, world: str, says: str = "") -> Callable:
    assert family in FAMILIES, family

    def register(fn: Callable) -> Callable:
        CASES.append(Case(code, family, what, world, fn, says))
        return fn

    return register


def cases(world: str) -> list[Case]:
    return [c for c in CASES if c.world == world]


# -- "app": a real-looking project with no AWS (build/lock, invoke, local) ----------------------------

APP_TOML = """\
[app]
name = "acme"
runtime = "python3.12"
exclude = ["docs/**", "infra/**"]

[layers.common]
packages = ["libs/common"]

[functions.api]
source = "src"
handler = "acme.api.handle"
layers = ["common"]
timeout = 5

[functions.boom]
source = "src"
handler = "acme.jobs.boom"
layers = ["common"]
timeout = 5
"""

APP_FILES = {
    "relay.toml": APP_TOML,
    "pyproject.toml": '[project]\nname = "acme"\nversion = "0.1.0"\nrequires-python = ">=3.12"\n',
    ".gitignore": "dist/\n.relay/\n*.key\n__pycache__/\n",
    "docs/index.md": "# acme\n",
    "infra/main.tf": 'resource "aws_s3_bucket" "artifacts" { bucket = "acme-relay" }\n',
    "src/acme/__init__.py": "",
    "src/acme/api.py": ("from common import greet\n\n\ndef handle(event, context):\n"
                        "    return {'body': greet(event.get('name', 'x'))}\n"),
    "src/acme/jobs.py": "def boom(event, context):\n    raise RuntimeError('the job failed: ' + str(event.get('id')))\n",
    "libs/common/pyproject.toml": '[project]\nname = "common"\nversion = "0"\n',
    "libs/common/common/__init__.py": "def greet(name):\n    return 'hello ' + name\n",
    "events/api.json": '{"name": "ada"}\n',
}


def write_tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def built_app(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("exitcodes-app")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RELAY_CACHE_DIR", str(base / "cache"))
        root = base / "acme"
        write_tree(root, APP_FILES)
        build_project(load_project(root / "relay.toml"))
        yield root


@pytest.fixture
def app(built_app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the built app, for this case alone (cases may break it)."""
    monkeypatch.setenv("RELAY_CACHE_DIR", str(built_app.parent / "cache"))
    copy = tmp_path / "acme"
    shutil.copytree(built_app, copy, symlinks=True)
    return copy


def _append(root: Path, text: str) -> None:
    with (root / "relay.toml").open("a", encoding="utf-8") as fh:
        fh.write(text)


@case(0, "build/lock", "a build with nothing to do", world="app")
def build_ok(root: Path, relay):
    return relay("build", cwd=root)


@case(0, "build/lock", "relay lock: no function has requirements to lock", world="app")
def lock_ok(root: Path, relay):
    return relay("lock", cwd=root)


@case(2, "build/lock", "an option relay build does not have", world="app")
def build_bad_option(root: Path, relay):
    return relay("build", "--no-such-option", cwd=root)


@case(3, "build/lock", "relay.toml names a runtime Lambda does not have", world="app")
def build_bad_runtime(root: Path, relay):
    toml = root / "relay.toml"
    toml.write_text(toml.read_text().replace('runtime = "python3.12"', 'runtime = "python2.7"'))
    return relay("build", cwd=root)


@case(3, "build/lock", "an environment requires one relay.toml does not declare", world="app")
def config_unknown_reference(root: Path, relay):
    _append(root, '\n[environments.prod]\naccount = "333333333333"\nregion = "us-east-1"\n'
                  'role = "arn:aws:iam::333333333333:role/relay-deployer"\nrequires = "qa"\n')
    return relay("build", cwd=root)


@case(4, "build/lock", "dist/ cannot be written (a file is in its place)", world="app",
      says="acme/dist")
def build_dist_unwritable(root: Path, relay):
    shutil.rmtree(root / "dist")
    (root / "dist").write_text("not a folder\n")
    return relay("build", cwd=root)


@case(4, "build/lock", "a handler that fails its import check", world="app")
def build_import_fails(root: Path, relay):
    (root / "src/acme/api.py").write_text("import not_locked_anywhere\n\n\ndef handle(event, context):\n    return 1\n")
    return relay("build", "api", cwd=root)


@case(5, "build/lock", "a function using more layers than Lambda allows", world="app")
def build_too_many_layers(root: Path, relay):
    extra = [f"l{i}" for i in range(5)]
    for name in extra:
        write_tree(root, {f"libs/{name}/{name}pkg/__init__.py": ""})
        _append(root, f'\n[layers.{name}]\npackages = ["libs/{name}"]\n')
    toml = root / "relay.toml"
    toml.write_text(toml.read_text().replace('handler = "acme.api.handle"\nlayers = ["common"]',
                                             'handler = "acme.api.handle"\nlayers = ["common", '
                                             + ", ".join(f'"{n}"' for n in extra) + "]"))
    return relay("build", "api", cwd=root)


@case(6, "build/lock", "a function whose requirements have no lock yet", world="app")
def build_lock_missing(root: Path, relay):
    write_tree(root, {"src/requirements.in": "attrs\n"})
    toml = root / "relay.toml"
    toml.write_text(toml.read_text().replace('handler = "acme.api.handle"\n',
                                             'handler = "acme.api.handle"\nrequirements = "src/requirements.in"\n'))
    return relay("build", "api", cwd=root)


@case(12, "build/lock", "relay build of a name relay.toml does not declare", world="app",
      says="no function or layer named 'nope'")
def build_unknown_name(root: Path, relay):
    return relay("build", "nope", cwd=root)


@case(12, "build/lock", "relay lock of a name relay.toml does not declare", world="app",
      says="no function or layer named 'nope'")
def lock_unknown_name(root: Path, relay):
    return relay("lock", "nope", cwd=root)


@case(0, "invoke", "a handler that returns", world="app")
def invoke_ok(root: Path, relay):
    return relay("invoke", "api", "--event", str(root / "events/api.json"), cwd=root)


@case(2, "invoke", "an --event file that does not exist", world="app")
def invoke_missing_event(root: Path, relay):
    return relay("invoke", "api", "--event", str(root / "events/nope.json"), cwd=root)


@case(12, "invoke", "a function relay.toml does not declare", world="app",
      says="no function named 'nope'")
def invoke_unknown_name(root: Path, relay):
    return relay("invoke", "nope", cwd=root)


@case(13, "invoke", "a handler that raises", world="app")
def invoke_raises(root: Path, relay):
    return relay("invoke", "boom", cwd=root)


@case(0, "local", "relay local status with no sandbox running", world="app")
def local_status_ok(root: Path, relay):
    return relay("local", "status", cwd=root)


@case(1, "local", "relay local up where .relay/ cannot be created (a file is in its place)", world="app",
      says="acme/.relay")
def local_state_unwritable(root: Path, relay):
    (root / ".relay").write_text("not a folder\n")
    return relay("local", "up", cwd=root)


@case(2, "local", "a relay local subcommand that does not exist", world="app")
def local_bad_subcommand(root: Path, relay):
    return relay("local", "sideways", cwd=root)


@pytest.mark.parametrize("item", cases("app"), ids=lambda c: c.id)
def test_app_case(item: Case, app: Path, relay) -> None:
    failure = _failure(item, item.run(app, relay))
    assert failure is None, failure


# -- "aws": the shop app in the moto accounts (registry, promote/rollback/status/history) ---------------


def _dead_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every AWS call goes to a port nothing listens on, and is not retried."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")


@case(0, "registry", "relay versions", world="aws")
def versions_ok(shop: Shop, relay, monkeypatch):
    return relay("versions", cwd=shop.root)


@case(0, "registry", "relay verify of a published release", world="aws")
def verify_ok(shop: Shop, relay, monkeypatch):
    return relay("verify", "1.0.0", cwd=shop.root)


@case(2, "registry", "relay keygen --out into a path under a file", world="aws")
def keygen_unwritable(shop: Shop, relay, monkeypatch):
    (shop.root / "afile").write_text("x\n")
    return relay("keygen", "--out", str(shop.root / "afile" / "relay.key"), cwd=shop.root)


@case(7, "registry", "relay publish of a published version with other bytes", world="aws")
def publish_conflict(shop: Shop, relay, monkeypatch):
    shop.set_code("orders", "changed")
    relay("build", cwd=shop.root)
    try:
        return relay("publish", "--version", "1.0.0", cwd=shop.root)
    finally:
        shop.set_code("orders", "a")
        relay("build", cwd=shop.root)


@case(12, "registry", "relay versions of a name no release holds", world="aws")
def versions_unknown_name(shop: Shop, relay, monkeypatch):
    return relay("versions", "nope", cwd=shop.root)


@case(12, "registry", "relay verify of a version never published", world="aws")
def verify_unknown_version(shop: Shop, relay, monkeypatch):
    return relay("verify", "9.9.9", cwd=shop.root)


@case(12, "registry", "relay diff against a version never published", world="aws")
def diff_unknown_version(shop: Shop, relay, monkeypatch):
    return relay("diff", "1.0.0", "9.9.9", cwd=shop.root)


@case(12, "registry", "relay verify --function of a function the release does not have", world="aws")
def verify_unknown_function(shop: Shop, relay, monkeypatch):
    return relay("verify", "1.0.0", "--function", "nope", cwd=shop.root)


@case(11, "registry", "relay versions with the registry out of reach", world="aws")
def versions_unreachable(shop: Shop, relay, monkeypatch):
    _dead_endpoint(monkeypatch)
    return relay("versions", cwd=shop.root)


@case(0, "promote", "relay status with nothing drifted", world="aws")
def status_ok(shop: Shop, relay, monkeypatch):
    return relay("status", cwd=shop.root)


@case(0, "promote", "relay history", world="aws")
def history_ok(shop: Shop, relay, monkeypatch):
    return relay("history", "--env", "staging", cwd=shop.root)


@case(2, "promote", "relay promote without --to", world="aws")
def promote_without_env(shop: Shop, relay, monkeypatch):
    return relay("promote", "1.0.0", cwd=shop.root)


@case(9, "promote", "relay promote to prod before the soak time in staging", world="aws")
def promote_gate_refused(shop: Shop, relay, monkeypatch):
    return relay("promote", "1.0.0", "--to", "prod", cwd=shop.root)


@case(12, "promote", "relay promote --to an environment relay.toml does not declare", world="aws",
      says="no environment named 'qa'")
def promote_unknown_env(shop: Shop, relay, monkeypatch):
    return relay("promote", "1.0.0", "--to", "qa", cwd=shop.root)


@case(12, "promote", "relay promote --only a function relay.toml does not declare", world="aws")
def promote_unknown_function(shop: Shop, relay, monkeypatch):
    return relay("promote", "1.0.0", "--to", "staging", "--only", "nope", cwd=shop.root)


@case(12, "promote", "relay promote of a version never published", world="aws")
def promote_unknown_version(shop: Shop, relay, monkeypatch):
    return relay("promote", "9.9.9", "--to", "staging", cwd=shop.root)


@case(12, "promote", "relay rollback --env an environment relay.toml does not declare", world="aws",
      says="no environment named 'qa'")
def rollback_unknown_env(shop: Shop, relay, monkeypatch):
    return relay("rollback", "--env", "qa", cwd=shop.root)


@case(12, "promote", "relay rollback --only a function relay.toml does not declare", world="aws",
      says="no function named 'nope'")
def rollback_unknown_function(shop: Shop, relay, monkeypatch):
    return relay("rollback", "--env", "staging", "--only", "nope", cwd=shop.root)


@case(12, "promote", "relay status --env an environment relay.toml does not declare", world="aws",
      says="no environment named 'qa'")
def status_unknown_env(shop: Shop, relay, monkeypatch):
    return relay("status", "--env", "qa", cwd=shop.root)


@case(12, "promote", "relay history --env an environment relay.toml does not declare", world="aws",
      says="no environment named 'qa'")
def history_unknown_env(shop: Shop, relay, monkeypatch):
    return relay("history", "--env", "qa", cwd=shop.root)


@case(10, "promote", "relay promote while another run holds the environment", world="aws")
def promote_while_held(shop: Shop, relay, monkeypatch):
    held = shop.promoter("prod").ledger.open(event="promote", actor="arn:aws:iam::333333333333:user/other-run",
                                              from_version=None, to_version="1.0.0", changes=[])
    try:
        return relay("promote", "1.0.0", "--to", "prod", "--force", "--reason", "exit code table", cwd=shop.root)
    finally:
        shop.promoter("prod").ledger.close(held, status="failed", reason="the test's stand-in run ends")


@case(11, "promote", "relay status with every account out of reach", world="aws",
      says="cannot read prod, staging")
def status_unreachable(shop: Shop, relay, monkeypatch):
    _dead_endpoint(monkeypatch)
    return relay("status", cwd=shop.root)


@case(11, "promote", "relay status --check with one environment out of reach (strict: any, not only all)", world="aws",
      says="cannot read prod")
def status_check_one_unreachable(shop: Shop, relay, monkeypatch):
    config = shop.config.read_text()
    # prod in a region its account does not answer in (as an opt-in region not enabled would): moto fails the calls.
    shop.config.write_text(config.replace('[environments.prod]\naccount = "333333333333"\nregion = "us-east-1"',
                                          '[environments.prod]\naccount = "333333333333"\nregion = "nowhere-1"'))
    try:
        lenient = relay("status", "--json", cwd=shop.root)
        assert lenient.code == 0 and lenient.json()["unreachable"] == ["prod"], lenient  # the rest is shown; exit 0
        return relay("status", "--check", cwd=shop.root)
    finally:
        shop.config.write_text(config)


@case(14, "promote", "relay status after code was changed by hand (no --check needed)", world="aws",
      says="drift in staging/orders")
def status_drift(shop: Shop, relay, monkeypatch):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("orders/__init__.py", "")
        zf.writestr("orders/handler.py", handler_source("orders", "by-hand"))
    shop.lam("staging").update_function_code(FunctionName="shop-orders", ZipFile=buffer.getvalue())
    return relay("status", "--env", "staging", cwd=shop.root)


@case(8, "registry", "relay verify of a release whose manifest was edited in the registry", world="aws")
def verify_tampered(shop: Shop, relay, monkeypatch):
    s3 = shop.client("registry", "s3")
    key = "relay/shop/functions/orders/1.0.0/manifest.json"
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    manifest["handler"] = "orders.handler.evil"
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(manifest).encode())
    return relay("verify", "1.0.0", cwd=shop.root)


@pytest.fixture
def shop(aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Shop:
    monkeypatch.delenv("RELAY_SIGNING_KEY", raising=False)
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    return new_shop(aws, tmp_path)


def test_registry_and_promotion_cases(shop: Shop, relay, monkeypatch: pytest.MonkeyPatch) -> None:
    """The "aws" cases in the order they are declared (the last ones change the accounts for good)."""
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    failures = []
    for item in cases("aws"):
        with monkeypatch.context() as mp:
            run = item.run(shop, relay, mp)
        failure = _failure(item, run)
        if failure is not None:
            failures.append(failure)
    assert not failures, "\n".join(failures)


# -- "process": a relay process interrupted, or writing into a closed pipe ---------------------------


@case(130, "promote", "Ctrl-C (SIGINT) during a canary step: aliases back, then exit 130", world="process")
def interrupted_canary() -> None:
    """Run by test_ctrl_c_during_a_canary_exits_130_with_the_aliases_back (it needs the shop's accounts)."""


@case(141, "build/lock", "stdout closed while relay build --explain writes it", world="process")
def stdout_closed() -> None:
    """Run by test_a_closed_stdout_exits_141_without_a_traceback."""


def _wait_for_weights(shop: Shop, fn: str, proc: subprocess.Popen) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        weights = (shop.alias("staging", fn).get("RoutingConfig") or {}).get("AdditionalVersionWeights")
        if weights:
            return weights
        if proc.poll() is not None:
            raise AssertionError(f"relay ended before the canary started: {proc.returncode} "
                                 f"{proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        time.sleep(0.1)
    raise AssertionError("the canary never started")


def test_ctrl_c_during_a_canary_exits_130_with_the_aliases_back(shop: Shop) -> None:
    """The real CLI in its own process on the real clock: its first canary step waits 5 minutes; Ctrl-C there."""
    shop.watch_canary()
    assert "interval" in CANARY
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    before = {fn: shop.alias("staging", fn)["FunctionVersion"] for fn in ("orders", "billing", "notify")}
    shop.set_code("orders", "b")
    shop.publish("1.1.0")

    for round_no in range(ROUNDS):
        proc = subprocess.Popen([sys.executable, "-c", MAIN, "-C", str(shop.root), "promote", "1.1.0", "--to", "staging"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
        try:
            assert _wait_for_weights(shop, "orders", proc)  # mid-canary: 10% on the new version
            proc.send_signal(signal.SIGINT)
            if round_no % 2:  # an impatient second Ctrl-C lands in the clean-up, which must finish regardless
                time.sleep(0.05)
                proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        stderr = err.decode()
        assert proc.returncode == 130, f"round {round_no}: exit {proc.returncode}\n{stderr[-3000:]}"
        assert "Traceback" not in stderr, stderr
        assert "error: interrupted (Ctrl-C)" in stderr and "aliases moved back: orders" in stderr, stderr
        assert "hint: What the command had started was put back" in stderr, stderr
        for fn, version in before.items():
            alias = shop.alias("staging", fn)
            assert (alias["FunctionVersion"], alias.get("RoutingConfig", {}).get("AdditionalVersionWeights") or {}) == (
                version, {}), (round_no, fn, alias)
        last = shop.ledger("staging")[-1]
        assert last["to_version"] == "1.1.0" and last["status"] != "started", last  # closed, not left holding staging
    assert readme_codes()[130]


def test_a_closed_stdout_exits_141_without_a_traceback(built_app: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", MAIN, "-C", str(built_app), "build", "--explain", "api"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "RELAY_CACHE_DIR": str(built_app.parent / "cache")})
    assert proc.stdout is not None
    proc.stdout.close()  # the reader goes away before relay writes, as `| head -0` would
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err


# -- the table itself --------------------------------------------------------------------------------


def test_every_code_in_the_table_has_a_case() -> None:
    table = readme_codes()
    covered = {c.code for c in CASES}
    assert sorted(set(table) - covered) == [], "codes in the README with no real case"
    assert sorted(covered - set(table)) == [], "cases whose code the README's table does not list"
    assert {c.family for c in CASES} == set(FAMILIES)
    for family in FAMILIES:
        assert any(c.code == 0 for c in CASES if c.family == family), f"{family}: no success case"
    # Unknown names: one code (12) in every family whose commands take names.
    named = {c.family for c in CASES if c.code == 12}
    assert named == {"build/lock", "registry", "promote", "invoke"}, named


def test_the_help_lists_the_same_codes_as_the_readme(relay) -> None:
    run = relay("--help")
    listed = {int(code) for code in re.findall(r"^\s+(\d+)\s{2}", run.stdout.split("Exit codes:", 1)[1], re.MULTILINE)}
    assert listed == set(readme_codes()), run.stdout


def _unclean(run) -> bool:
    """An error that is not one `error:` line plus a `hint:` line, or that shows relay's own traceback."""
    if re.search(r'File "[^"]*/builder/', run.stderr):  # a handler's traceback (relay invoke) is the handler's
        return True
    if run.code in (0, 2):
        return False
    return "error: " not in run.stderr or "hint: " not in run.stderr


def _failure(item: Case, run) -> str | None:
    if run.code != item.code:
        return f"{item.id} ({item.what}): exit {run.code}, wanted {item.code}: {run!r}"
    if _unclean(run):
        return f"{item.id} ({item.what}): not one error line and a hint, or a traceback: {run!r}"
    if item.says not in run.stderr:
        return f"{item.id} ({item.what}): stderr does not say {item.says!r}: {run!r}"
    return None

