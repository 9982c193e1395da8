"""Checks forked from a warm interpreter see what a fresh one would: a missing module is still missing.

The first check of a layer set starts one interpreter that imports what the handler imports from the
layers (resolved statically), or what an earlier check of the layers loaded, and forks a child per check
(`builder.runtime.check.WarmInterpreters`). These tests drive the runtime's `check_import` directly, with
real zips and the runtime's Python.
"""

from __future__ import annotations

import hashlib
import time
import zipfile
from pathlib import Path

import pytest

from builder.bundle.pythons import find_python
from builder.runtime.check import Status, WarmInterpreters, check_import
from builder.runtime.interpreter import runtime_python
from builder.runtime.mount import Trees, Zipped

RUNTIME = "python3.12"

pytestmark = pytest.mark.skipif(find_python("3.12") is None, reason=f"{RUNTIME} is not installed here")


def zipped(path: Path, files: dict[str, str]) -> Zipped:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return Zipped(path, hashlib.sha256(path.read_bytes()).hexdigest())


@pytest.fixture
def layer(tmp_path: Path) -> Zipped:
    return zipped(tmp_path / "layer.zip", {
        "python/money/__init__.py": "import os\nSTARTED_IN = os.environ.get('AWS_LAMBDA_FUNCTION_NAME')\n",
        "python/money/cents.py": "def cents(a):\n    return round(a * 100)\n",
    })


def check(tmp_path: Path, bundle: Zipped, layer: Zipped, warm: WarmInterpreters, handler: str = "app.handler",
          environment: dict[str, str] | None = None, function: str = "fn"):
    python = runtime_python(RUNTIME)
    assert python is not None
    return check_import(bundle, [layer], trees=Trees(tmp_path / "cache"), python=python, function=function,
                        handler=handler, runtime=RUNTIME, memory=128, environment=environment or {}, warm=warm)


APP = "from money import cents\n{extra}\n\ndef handler(event, context):\n    return cents.cents(1)\n"


def checked_first(tmp_path: Path, layer: Zipped, warm: WarmInterpreters) -> Zipped:
    """A bundle whose check is the first of the layer set (a fresh interpreter, which passes)."""
    first = zipped(tmp_path / "one.zip", {"app.py": APP.format(extra="")})
    assert check(tmp_path, first, layer, warm).status is Status.OK
    return first


def kept_by_an_earlier_build(tmp_path: Path, layer: Zipped) -> Path:
    """The store in which an earlier build's first check of `layer` left what it loaded."""
    store = tmp_path / "warm"
    earlier = WarmInterpreters(store)
    try:
        checked_first(tmp_path, layer, earlier)
    finally:
        earlier.close()
    return store


def missing_then_fine(tmp_path: Path, layer: Zipped, store: Path):
    """A later build's checks with `store`: a bundle importing `greeting` (missing), then one that imports fine."""
    later = WarmInterpreters(store)
    try:
        missing = zipped(tmp_path / "two.zip", {"app.py": APP.format(extra="import greeting")})
        fine = zipped(tmp_path / "three.zip", {"app.py": APP.format(extra="")})
        return check(tmp_path, missing, layer, later), check(tmp_path, fine, layer, later)
    finally:
        later.close()


def test_a_served_check_still_fails_on_a_module_missing_from_the_bundle(tmp_path: Path, layer: Zipped) -> None:
    warm = WarmInterpreters()
    python = runtime_python(RUNTIME)
    try:
        first = checked_first(tmp_path, layer, warm)
        mount = Trees(tmp_path / "cache").mount(first, [layer])
        server = warm.get(python, mount, {}, tmp_path / "pycache")
        assert server is not None and "money" in server.top  # warmed with what the first check loaded

        missing = zipped(tmp_path / "two.zip", {"app.py": APP.format(extra="import greeting")})
        verdict = check(tmp_path, missing, layer, warm)

        assert verdict.status is Status.MISSING and verdict.module == "greeting"
        broken = zipped(tmp_path / "three.zip", {"app.py": APP.format(extra="raise RuntimeError('init failed')")})
        assert check(tmp_path, broken, layer, warm).status is Status.ERROR
        no_handler = zipped(tmp_path / "four.zip", {"app.py": APP.format(extra="")})
        assert check(tmp_path, no_handler, layer, warm, handler="app.missing").status is Status.NO_HANDLER
    finally:
        warm.close()
    assert server.proc.poll() is not None  # stopped with the build


def test_each_served_check_gets_its_own_function_environment(tmp_path: Path, layer: Zipped) -> None:
    warm = WarmInterpreters()
    try:
        checked_first(tmp_path, layer, warm)
        needs_table = zipped(tmp_path / "two.zip", {"app.py": APP.format(extra="import os\nTABLE = os.environ['TABLE']")})

        assert check(tmp_path, needs_table, layer, warm).status is Status.ERROR
        assert check(tmp_path, needs_table, layer, warm, environment={"TABLE": "orders"}).status is Status.OK
    finally:
        warm.close()


def test_a_bundle_shipping_a_module_the_server_imported_is_checked_fresh(tmp_path: Path, layer: Zipped) -> None:
    warm = WarmInterpreters()
    python = runtime_python(RUNTIME)
    try:
        first = checked_first(tmp_path, layer, warm)
        # The bundle's own `money` wins over the layer's on Lambda: and it has no `cents`.
        shadowing = zipped(tmp_path / "two.zip", {"app.py": APP.format(extra=""), "money/__init__.py": ""})
        mount = Trees(tmp_path / "cache").mount(shadowing, [layer])
        server = warm.get(python, Trees(tmp_path / "cache").mount(first, [layer]), {}, tmp_path / "pycache")
        assert server is not None and "money" in server.top and not server.serves(mount.task)

        verdict = check(tmp_path, shadowing, layer, warm)

        assert verdict.status is Status.ERROR
        assert "cannot import name 'cents' from 'money' (/var/task/money/__init__.py)" in verdict.error
    finally:
        warm.close()


def test_layers_are_kept_unpacked_in_order_later_ones_winning_read_only(tmp_path: Path) -> None:
    first = zipped(tmp_path / "l1.zip", {"python/shared.py": "V = 'first'\n", "python/only1.py": ""})
    second = zipped(tmp_path / "l2.zip", {"python/shared.py": "V = 'second'\n"})
    trees = Trees(tmp_path / "cache")

    opt = trees.opt([first, second])

    assert (opt / "python/shared.py").read_text() == "V = 'second'\n"
    assert (opt / "python/only1.py").is_file()
    assert not (opt / "python/shared.py").stat().st_mode & 0o222
    assert trees.opt([first, second]) == opt  # kept: the same folder, not unpacked again
    assert trees.opt([second, first]) != opt and (trees.opt([second, first]) / "python/shared.py").read_text() == "V = 'first'\n"
    assert trees.opt([first]) == trees.tree(first)  # one layer is its own tree


def test_a_zip_member_outside_the_tree_is_refused(tmp_path: Path) -> None:
    from builder.errors import VerificationFailed

    evil = zipped(tmp_path / "evil.zip", {"../outside.py": "X = 1\n"})

    with pytest.raises(VerificationFailed):
        Trees(tmp_path / "cache").tree(evil)
    assert not (tmp_path / "cache/outside.py").exists() and not (tmp_path / "cache/trees/outside.py").exists()


def test_the_warm_interpreter_ends_when_relay_goes_away(tmp_path: Path, layer: Zipped) -> None:
    """relay killed mid-build never calls close(): the server sees its stdin close and exits."""
    warm = WarmInterpreters()
    python = runtime_python(RUNTIME)
    first = checked_first(tmp_path, layer, warm)
    server = warm.get(python, Trees(tmp_path / "cache").mount(first, [layer]), {}, tmp_path / "pycache")
    assert server is not None and server.proc.stdin is not None

    server.proc.stdin.close()  # what the kernel does when relay dies

    assert server.proc.wait(timeout=10) == 0
    warm.close()


def _counting_servers(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every warm interpreter started from now on (real ones), in the list returned."""
    from builder.runtime import check as check_module

    started: list[object] = []
    original = check_module.ForkServer

    def counting(*args, **kwargs):
        server = original(*args, **kwargs)
        started.append(server)
        return server

    monkeypatch.setattr(check_module, "ForkServer", counting)
    return started


def test_the_first_check_of_a_layer_set_is_served_by_a_server_warmed_with_what_its_handler_imports(
        tmp_path: Path, layer: Zipped, monkeypatch: pytest.MonkeyPatch) -> None:
    """No check runs alone first: the first one starts the server from its handler's imports (resolved
    statically) and every check, the first included, forks from it; one that could not be served starts none."""
    started = _counting_servers(monkeypatch)
    warm = WarmInterpreters()
    try:
        # A bundle shipping its own `money` could not be served if the server imported the layer's: what it
        # imports from its own code is not imported ahead, so the server it starts may serve it.
        shadowing = zipped(tmp_path / "shadow.zip", {"app.py": APP.format(extra=""),
                                                     "money/__init__.py": "", "money/cents.py": "def cents(a):\n    return 0\n"})
        assert check(tmp_path, shadowing, layer, warm).status is Status.OK
        assert len(started) == 1 and "money" not in started[0].top
        warm.close()
        started.clear()

        second = zipped(tmp_path / "two.zip", {"app.py": APP.format(extra="import greeting")})
        verdict = check(tmp_path, second, layer, warm)

        assert verdict.status is Status.MISSING and verdict.module == "greeting"
        assert len(started) == 1 and "money" in started[0].preload and "money" in started[0].top
        third = zipped(tmp_path / "three.zip", {"app.py": APP.format(extra="")})
        assert check(tmp_path, third, layer, warm).status is Status.OK
        assert len(started) == 1
        # The layer's `money` imported ahead: a bundle shipping its own is checked fresh, and still passes.
        assert check(tmp_path, shadowing, layer, warm).status is Status.OK
        assert len(started) == 1
    finally:
        warm.close()


def test_a_module_of_the_layers_failing_at_import_fails_a_served_check_as_a_fresh_one(tmp_path: Path) -> None:
    """What the server imports ahead and fails is skipped; the check imports it again and sees the same error."""
    layer = zipped(tmp_path / "layer.zip", {
        "python/money/__init__.py": "import os\nif not os.environ.get('CURRENCY'):\n    raise RuntimeError('no CURRENCY')\n",
    })
    app = zipped(tmp_path / "app.zip", {"app.py": "import money\n\ndef handler(event, context):\n    return 1\n"})

    fresh = check(tmp_path / "fresh", app, layer, None)  # type: ignore[arg-type]
    warm = WarmInterpreters()
    try:
        served = check(tmp_path / "served", app, layer, warm)
        fixed = check(tmp_path / "served", app, layer, warm, environment={"CURRENCY": "EUR"})
    finally:
        warm.close()

    assert fresh.status is Status.ERROR and "no CURRENCY" in fresh.error
    assert (served.status, served.error) == (fresh.status, fresh.error)
    assert fixed.status is Status.OK


def test_what_a_handler_takes_from_a_lazy_layer_package_is_imported_once_by_the_server(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`from lazy import Model`, where `lazy` imports its submodule only when the name is asked for (as pydantic
    does for BaseModel): the server asks, so the checks forked from it do not each import it again."""
    marker = tmp_path / "imported-by.txt"
    layer = zipped(tmp_path / "lazy.zip", {
        "python/lazy/__init__.py": ("def __getattr__(name):\n    if name == 'Model':\n        from lazy import heavy\n"
                                    "        return heavy.Model\n    raise AttributeError(name)\n"),
        "python/lazy/heavy.py": f"import os\nwith open({str(marker)!r}, 'a') as f:\n    f.write(f'{{os.getpid()}}\\n')\n"
                                "class Model:\n    pass\n",
    })
    app = "from lazy import Model\n{extra}\n\ndef handler(event, context):\n    return Model()\n"
    started = _counting_servers(monkeypatch)
    warm = WarmInterpreters()
    try:
        first = zipped(tmp_path / "one.zip", {"app.py": app.format(extra="")})
        missing = zipped(tmp_path / "two.zip", {"app.py": app.format(extra="import greeting")})
        assert check(tmp_path, first, layer, warm).status is Status.OK
        verdict = check(tmp_path, missing, layer, warm)
    finally:
        warm.close()

    assert verdict.status is Status.MISSING and verdict.module == "greeting"
    assert len(started) == 1 and "lazy:Model" in started[0].preload
    assert marker.read_text().split() == [str(started[0].proc.pid)]  # the server's import, not one per check


def lazy_layer(tmp_path: Path) -> tuple[Zipped, Path]:
    """A layer whose `money.rates()` imports the layer's top-level `fx` only when called, as libraries import
    lazily inside what init calls (no static list sees it); `fx` notes each process that imports it."""
    marker = tmp_path / "fx-imported-by.txt"
    return zipped(tmp_path / "lazy-layer.zip", {
        "python/money/__init__.py": "def rates():\n    import fx\n    return fx.RATE\n",
        "python/fx.py": f"import os\nwith open({str(marker)!r}, 'a') as f:\n    f.write(f'{{os.getpid()}}\\n')\nRATE = 'layer'\n",
    }), marker


CALLS_RATES = "import money\nRATE = money.rates()\n\ndef handler(event, context):\n    return RATE\n"
# Ships its own fx, which wins on Lambda: a server that imported the layer's may not check it.
OWN_FX = {"app.py": "import fx\nassert fx.RATE == 'own', fx.RATE\n\ndef handler(event, context):\n    return 1\n",
          "fx.py": "RATE = 'own'\n"}


def test_what_the_first_check_loaded_lazily_is_imported_by_the_server_for_the_next_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Started from the handler's static imports, the server lacks what the layers import inside the calls init
    makes; the first passing check reports it, and the server imports it then (`ForkServer.preload_more`): the
    later checks do not each import it again. A bundle shipping such a name is then checked fresh."""
    layer, marker = lazy_layer(tmp_path)
    started = _counting_servers(monkeypatch)
    warm = WarmInterpreters()
    try:
        first = zipped(tmp_path / "one.zip", {"app.py": CALLS_RATES})
        assert check(tmp_path, first, layer, warm).status is Status.OK
        [server] = started
        assert "fx" in server.top and "fx" in server.preload
        for i in range(3):
            later = zipped(tmp_path / f"later{i}.zip", {"app.py": CALLS_RATES + f"\nN = {i}\n"})
            assert check(tmp_path, later, layer, warm).status is Status.OK
        own = zipped(tmp_path / "own.zip", OWN_FX)
        assert check(tmp_path, own, layer, warm).status is Status.OK  # its own fx, as on Lambda
        missing = zipped(tmp_path / "missing.zip", {"app.py": CALLS_RATES + "import greeting\n"})
        verdict = check(tmp_path, missing, layer, warm)
    finally:
        warm.close()

    assert verdict.status is Status.MISSING and verdict.module == "greeting"
    # The first check's fork imported fx, then the server; none of the four later checks did.
    importers = marker.read_text().split()
    assert len(importers) == 2 and importers[1] == str(server.proc.pid)


def test_a_module_printing_much_while_the_server_imports_it_does_not_stall_the_server(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's stdout is the pipe relay read its first line from: a module that prints more than a pipe holds
    when the server imports it later (`preload_more`) would block it for good. It goes to the server's log."""
    layer = zipped(tmp_path / "noisy.zip", {
        "python/money/__init__.py": "def rates():\n    import noisy\n    return noisy.RATE\n",
        "python/noisy.py": "print('x' * 200_000)\nRATE = 1\n",
    })
    started = _counting_servers(monkeypatch)
    warm = WarmInterpreters()
    try:
        first = zipped(tmp_path / "one.zip", {"app.py": CALLS_RATES})
        assert check(tmp_path, first, layer, warm).status is Status.OK
        assert "noisy" in started[0].top
        second = zipped(tmp_path / "two.zip", {"app.py": CALLS_RATES + "import greeting\n"})
        verdict = check(tmp_path, second, layer, warm)
    finally:
        warm.close()
    assert verdict.status is Status.MISSING and verdict.module == "greeting"


@pytest.mark.parametrize("attempt", range(5))
def test_a_bundle_shipping_a_name_the_server_is_importing_meanwhile_is_checked_as_lambda_would(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, attempt: int) -> None:
    """Racing: the first check's report makes the server import the layer's `fx` while bundles shipping their
    own `fx` are being checked, each deciding whether the server may serve it as slowly as a large bundle's walk
    takes. Whatever the order, those bundles see their own `fx` (served before the import, or checked fresh
    after it), never the layer's."""
    import threading

    from builder.runtime import child as child_module

    original = child_module.servable

    def slow(task: Path, top: frozenset[str]) -> bool:
        answer = original(task, top)
        time.sleep(0.05)  # the decision is taken; what the server imports meanwhile must not reach this check
        return answer

    monkeypatch.setattr(child_module, "servable", slow)
    layer, _ = lazy_layer(tmp_path)
    warm = WarmInterpreters()
    bundles = [zipped(tmp_path / "one.zip", {"app.py": CALLS_RATES})] + [
        zipped(tmp_path / f"own{i}.zip", {**OWN_FX, "app.py": OWN_FX["app.py"] + f"N = {i}\n"}) for i in range(3)]
    verdicts: dict[int, object] = {}

    def run(i: int) -> None:
        verdict = check(tmp_path, bundles[i], layer, warm, function=f"fn{i}")
        verdicts[i] = (verdict.status, verdict.error)

    try:
        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bundles))]
        for thread in threads:
            thread.start()
            time.sleep(0.02 * attempt)
        for thread in threads:
            thread.join()
    finally:
        warm.close()

    assert verdicts == dict.fromkeys(range(len(bundles)), (Status.OK, ""))


@pytest.mark.parametrize("attempt", range(5))
def test_checks_arriving_while_the_server_starts_all_wait_for_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 attempt: int) -> None:
    """Racing checks of one layer set: one starts the server, every other one waits and is served (none runs fresh)."""
    import threading
    import time

    from builder.runtime import check as check_module
    from builder.runtime.interpreter import Interpreter
    from builder.runtime.mount import Mount

    started: list[int] = []

    class SlowServer:
        def __init__(self, *args, **kwargs) -> None:
            time.sleep(0.2)  # a server takes a while to import the layers' modules
            started.append(1)

        def close(self) -> None:
            pass

    monkeypatch.setattr(check_module, "ForkServer", SlowServer)
    for name in ("task", "opt", "runtime"):
        (tmp_path / name).mkdir()
    mount = Mount(task=tmp_path / "task", opt=tmp_path / "opt", runtime=tmp_path / "runtime")
    python = Interpreter(Path("/usr/bin/python3"), "3.12")
    warm = WarmInterpreters()
    warm.remember(python, mount, ["money"], {}, tmp_path / "pycache")
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(warm.get(python, mount, {}, tmp_path / "pycache")))
               for _ in range(4)]
    for thread in threads:
        thread.start()
        time.sleep(0.02 * attempt)
    for thread in threads:
        thread.join()
    warm.close()

    assert len(started) == 1
    assert len(got) == 4 and all(isinstance(server, SlowServer) for server in got)


def test_a_later_build_forks_every_check_of_a_known_layer_set_from_the_start(
        tmp_path: Path, layer: Zipped, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the first check of an earlier build loaded is kept: the next build's first check is already served,
    and a module missing from the bundle is still missing."""
    store = kept_by_an_earlier_build(tmp_path, layer)
    assert len(list(store.glob("*.json"))) == 1
    started = _counting_servers(monkeypatch)
    verdict, fine = missing_then_fine(tmp_path, layer, store)
    assert verdict.status is Status.MISSING and verdict.module == "greeting"
    assert len(started) == 1 and "money" in started[0].top  # the first check of this build: served
    assert fine.status is Status.OK


@pytest.mark.parametrize("damage", ["edited", "truncated", "bogus-module", "not-a-name"])
def test_a_damaged_or_doctored_module_list_changes_no_verdict(tmp_path: Path, layer: Zipped,
                                                              monkeypatch: pytest.MonkeyPatch, damage: str) -> None:
    """The kept list only decides what is imported ahead. Edited without its checksum or cut short, it is not
    used; resealed with a module that does not exist (or with `greeting`, which the check must find missing),
    the server skips what fails, and a check sees what a fresh interpreter would."""
    import json

    from builder.runtime import check as check_module

    store = kept_by_an_earlier_build(tmp_path, layer)
    [kept] = store.glob("*.json")
    doc = json.loads(kept.read_text())
    key = tuple(doc["key"])
    if damage == "edited":
        doc["preload"].append("greeting")
        kept.write_text(json.dumps(doc))
    elif damage == "truncated":
        kept.write_text(kept.read_text()[:-10])
    else:
        preload = [*doc["preload"], "no_such_module", "greeting"] if damage == "bogus-module" else ["os;rm"]
        kept.write_text(json.dumps({"key": list(key), "preload": preload,
                                    "sha256": check_module._list_checksum(key, preload)}))
    started = _counting_servers(monkeypatch)
    verdict, fine = missing_then_fine(tmp_path, layer, store)
    assert verdict.status is Status.MISSING and verdict.module == "greeting"
    # A list not kept whole is not used: the server imports what the handler imports instead.
    assert len(started) == 1 and ("no_such_module" in started[0].preload) == (damage == "bogus-module")
    assert fine.status is Status.OK


def test_what_a_handler_imports_from_outside_its_bundle_is_known_from_the_bundle_alone(tmp_path: Path) -> None:
    """The warm interpreter's first list, resolved while the layers are still being built: what the handler's
    own code imports at init from elsewhere (found or not), never its own modules nor what runs later."""
    from builder.runtime.static import init_imports

    bundle = zipped(tmp_path / "app.zip", {
        "shop/__init__.py": "",
        "shop/handlers/__init__.py": "",
        "shop/handlers/orders.py": (
            "import json\nfrom money import cents\nfrom shop import models\nfrom . import helpers\n"
            "try:\n    import orjson\nexcept ImportError:\n    orjson = None\n"
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import mypy_boto3_s3\n\n"
            "def handle(event, context):\n    import later\n    return cents.cents(1)\n"),
        "shop/handlers/helpers.py": "import decimal\n",
        "shop/models.py": "import pydantic\nfrom aws_lambda_powertools.utilities.typing import LambdaContext\n",
    })
    task = Trees(tmp_path / "cache").tree(bundle)

    found = init_imports(task, "shop.handlers.orders.handle", python="3.12", machine="x86_64")

    # In the order init imports them: the handler's first import, then down into its own modules as it meets them;
    # a name taken from another's module follows it ("module:name").
    assert found == ["json", "money", "money:cents", "pydantic", "aws_lambda_powertools.utilities.typing",
                     "aws_lambda_powertools.utilities.typing:LambdaContext", "decimal", "orjson", "typing",
                     "typing:TYPE_CHECKING"]
    assert not {"shop", "later", "mypy_boto3_s3"} & {name.partition(".")[0] for name in found}
