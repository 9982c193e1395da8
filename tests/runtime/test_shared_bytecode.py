"""Bytecode compiled for one tree serves another tree holding the same sources (`runtime/bytecode.py`).

A layer whose lock bumped two packages, or a function bundle after one handler was edited, is a new
tree (new paths): its unchanged modules are not compiled again. Python itself decides whether a
linked pyc is valid (source size and mtime), so these tests import for real under the runtime's
Python and look at what it did with the files.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from builder.bundle.pythons import find_python
from builder.runtime.bytecode import SOURCE_MTIME
from builder.runtime.mount import Trees, Zipped

PYTHON = find_python("3.12")
pytestmark = pytest.mark.skipif(PYTHON is None, reason="python3.12 is not installed here")

MODULE = "import json\n\ndef total(items):\n    return sum(items)\n" + "".join(f"X{i} = {i}\n" for i in range(200))


def layer(path: Path, files: dict[str, str]) -> Zipped:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return Zipped(path, hashlib.sha256(path.read_bytes()).hexdigest())


def import_in(trees: Trees, tree: Path, module: str) -> None:
    assert PYTHON is not None
    subprocess.run([str(PYTHON), "-I", "-X", f"pycache_prefix={trees.pycache}", "-c",
                    f"import sys; sys.path.insert(0, {str(tree / 'python')!r}); import {module}"], check=True)


def pyc(trees: Trees, tree: Path, rel: str) -> Path:
    source = tree / rel
    [found] = (trees.pycache / str(source.parent).lstrip(os.sep)).glob(f"{source.stem}.cpython-312.pyc")
    return found


def test_a_new_tree_with_the_same_module_uses_the_bytecode_compiled_for_the_first(tmp_path: Path) -> None:
    trees = Trees(tmp_path / "cache")
    first = trees.tree(layer(tmp_path / "one.zip", {"python/money.py": MODULE, "python/old.py": "A = 1\n"}))
    import_in(trees, first, "money")
    trees.share_bytecode()  # what a build does when it ends

    # A "bumped" layer: money.py unchanged, another module new.
    second = trees.tree(layer(tmp_path / "two.zip", {"python/money.py": MODULE, "python/new.py": "B = 2\n"}))

    seeded = pyc(trees, second, "python/money.py")
    assert seeded.stat().st_nlink > 1  # linked from the store, before anything imported it
    assert (second / "python/money.py").stat().st_mtime == SOURCE_MTIME
    before = seeded.stat().st_ino
    import_in(trees, second, "money")
    assert pyc(trees, second, "python/money.py").stat().st_ino == before  # Python accepted it: not compiled again


def test_a_changed_module_gets_no_bytecode_of_another(tmp_path: Path) -> None:
    trees = Trees(tmp_path / "cache")
    first = trees.tree(layer(tmp_path / "one.zip", {"python/money.py": MODULE}))
    import_in(trees, first, "money")
    trees.share_bytecode()

    second = trees.tree(layer(tmp_path / "two.zip", {"python/money.py": MODULE.replace("sum(items)", "0")}))

    folder = trees.pycache / str(second / "python").lstrip(os.sep)
    assert not list(folder.glob("money.*.pyc"))
    import_in(trees, second, "money")  # compiled for itself
    assert pyc(trees, second, "python/money.py").stat().st_nlink == 1


def test_stored_bytecode_python_rejects_is_compiled_again_and_the_store_is_untouched(tmp_path: Path) -> None:
    """An edited store entry (or one whose source mtime does not match) costs a compile, never a wrong import."""
    trees = Trees(tmp_path / "cache")
    first = trees.tree(layer(tmp_path / "one.zip", {"python/money.py": MODULE}))
    import_in(trees, first, "money")
    trees.share_bytecode()
    [stored] = (tmp_path / "cache/bytecode").glob("*/*.pyc")
    data = bytearray(stored.read_bytes())
    data[8:12] = (SOURCE_MTIME + 1).to_bytes(4, "little")  # the source mtime the pyc claims
    stored.chmod(0o644)
    stored.write_bytes(bytes(data))  # the file is shared by links: every copy of it now claims another mtime
    tampered = stored.read_bytes()

    second = trees.tree(layer(tmp_path / "two.zip", {"python/money.py": MODULE, "python/other.py": ""}))
    import_in(trees, second, "money")

    assert stored.read_bytes() == tampered  # Python replaced its own copy, not the store's
    assert pyc(trees, second, "python/money.py").stat().st_nlink == 1


def installed_and_kept(trees: Trees, scratch: Path, files: dict[str, str]) -> Path:
    """`files` written under `scratch/python` as the installer writes them (the trees' one mtime), then kept."""
    for rel, text in files.items():
        path = scratch / "python" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        os.utime(path, (SOURCE_MTIME, SOURCE_MTIME))
    return trees.keep("digest-of-money", scratch)


def test_sources_compiled_ahead_from_the_wheel_are_linked_into_the_tree_and_accepted(tmp_path: Path) -> None:
    """`Compiler`: the runtime's Python compiles each .py of a wheel handed to it, from the wheel itself, into the
    store by sha256; the tree installed from it and kept afterwards gets them linked in (every .py with the trees'
    one mtime), and Python imports them as they are."""
    from builder.runtime.bytecode import Compiler

    assert PYTHON is not None
    trees = Trees(tmp_path / "cache")
    files = {"money/__init__.py": MODULE, "money/rates.py": "R = 2\n"}
    wheel = layer(tmp_path / "money-1.0-py3-none-any.whl", {**files, "money-1.0.dist-info/RECORD": ""}).path
    assert wheel is not None
    compiler = Compiler(PYTHON, trees.bytecode.root)
    compiler.add_wheel(wheel)
    compiler.stop(finish=True)
    shas = {rel: hashlib.sha256(text.encode()).hexdigest() for rel, text in files.items()}
    assert sorted(p.name for p in (tmp_path / "cache/bytecode").glob("*/*.pyc")) == sorted(f"{s}.pyc" for s in shas.values())

    tree = installed_and_kept(trees, tmp_path / "scratch", files)
    inodes = {rel: pyc(trees, tree, f"python/{rel}").stat().st_ino for rel in files}
    import_in(trees, tree, "money.rates")
    assert {rel: pyc(trees, tree, f"python/{rel}").stat().st_ino for rel in files} == inodes  # accepted as they were


def test_what_the_compiler_compiles_after_the_tree_is_kept_is_linked_into_it_and_accepted(tmp_path: Path) -> None:
    """`Compiler.link_into`: the compiler goes on while the warm interpreter imports the layer's modules. Told where
    the kept tree's bytecode goes, it links what it compiles there (not the wheel's metadata): the tree here was kept
    before anything was compiled, so whatever Python finds there the compiler put, and Python takes it as it is."""
    from builder.runtime.bytecode import Compiler, prefixed

    assert PYTHON is not None
    trees = Trees(tmp_path / "cache")
    files = {"money/__init__.py": MODULE, "money/rates.py": "R = 2\n", "money/sub/__init__.py": "from . import deep\n",
             "money/sub/deep.py": "D = 1\n"}
    tree = installed_and_kept(trees, tmp_path / "scratch", files)
    assert not list(trees.pycache.rglob("*.pyc"))  # nothing compiled yet: nothing linked when it was kept
    wheel = layer(tmp_path / "money-1.0-py3-none-any.whl", {**files, "money-1.0.dist-info/hooks.py": "H = 1\n"}).path
    assert wheel is not None

    compiler = Compiler(PYTHON, trees.bytecode.root)
    compiler.link_into(prefixed(trees.pycache, tree / "python"))
    compiler.add_wheel(wheel)
    compiler.stop(finish=True)

    linked = {rel: pyc(trees, tree, f"python/{rel}") for rel in files}
    assert all(path.stat().st_nlink == 2 for path in linked.values())  # the store's file, linked
    assert not list(trees.pycache.rglob("hooks*.pyc"))
    inodes = {rel: path.stat().st_ino for rel, path in linked.items()}
    import_in(trees, tree, "money.rates, money.sub")
    assert {rel: pyc(trees, tree, f"python/{rel}").stat().st_ino for rel in files} == inodes  # accepted as they were


def test_a_kept_tree_of_listed_files_gets_its_copies_the_one_mtime_and_is_not_walked(tmp_path: Path) -> None:
    """`Trees.keep(listed=True)`, as a build keeps what it installed: the installer's `.py` already carry the trees'
    one mtime and are not touched again; the project's own files copied in get it too, so the bytecode compiled
    for those sources (by sha256, for that mtime) is valid for all of them."""
    trees = Trees(tmp_path / "cache")
    installed = tmp_path / "scratch" / "installed.py"
    installed.parent.mkdir()
    installed.write_text("I = 1\n")
    os.utime(installed, (SOURCE_MTIME, SOURCE_MTIME))
    installed.chmod(0o444)
    own = tmp_path / "project" / "handler.py"
    own.parent.mkdir()
    own.write_text("H = 1\n")
    known = {"installed.py": hashlib.sha256(b"I = 1\n").hexdigest(), "handler.py": hashlib.sha256(b"H = 1\n").hexdigest()}

    tree = trees.keep("digest", tmp_path / "scratch", [("handler.py", own, 0o644)], known=known, listed=True)

    assert {p.name: p.stat().st_mtime for p in tree.iterdir()} == {"installed.py": SOURCE_MTIME, "handler.py": SOURCE_MTIME}
    assert own.stat().st_mtime != SOURCE_MTIME  # the project's file itself is left as it is
    assert not (tree / "handler.py").stat().st_mode & 0o222


def test_a_compiler_stopped_early_leaves_only_whole_files(tmp_path: Path) -> None:
    """Killed mid-queue (the install ended): every `<sha256>.pyc` it left loads; a half-written one never has that name."""
    from builder.runtime.bytecode import Compiler

    assert PYTHON is not None
    wheels = [layer(tmp_path / f"m{i}-1.0-py3-none-any.whl",
                    {f"m{i}/{j}.py": MODULE * 20 + f"N = {i * 100 + j}\n" for j in range(10)}).path for i in range(30)]
    compiler = Compiler(PYTHON, tmp_path / "store")
    for wheel in wheels:
        assert wheel is not None
        compiler.add_wheel(wheel)
    time.sleep(0.3)
    compiler.stop()  # at once: it is killed wherever it is

    stored = list((tmp_path / "store").glob("*/*.pyc"))
    assert 0 < len(stored) < 300  # it had started, and it was stopped before the end
    check = "import marshal, sys\nfor p in sys.argv[1:]:\n    marshal.loads(open(p, 'rb').read()[16:])\n"
    subprocess.run([str(PYTHON), "-c", check, *map(str, stored)], check=True)


@pytest.mark.parametrize("links", ["allowed", "refused"])
def test_the_standard_librarys_own_bytecode_serves_under_the_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    links: str) -> None:
    """With a pycache prefix Python reads bytecode only there: a new cache compiled every standard module a check
    imported. Linked in once (copied where links are refused: another file system, protected hard links), the
    stdlib's own files are accepted as they are, and nothing of it is compiled."""
    assert PYTHON is not None
    version = "3.12"
    trees = Trees(tmp_path / "cache")
    if links == "refused":
        def refuse(*args, **kwargs):
            raise PermissionError(1, "Operation not permitted")

        monkeypatch.setattr(os, "link", refuse)
    trees.bytecode.link_stdlib(PYTHON, version)
    monkeypatch.undo()
    stdlib = PYTHON.resolve().parent.parent / "lib" / f"python{version}"
    if not list((stdlib / "__pycache__").glob("json*.pyc")) and not list((stdlib / "json/__pycache__").glob("*.pyc")):
        pytest.skip("this Python's standard library has no bytecode of its own")
    linked = trees.pycache / str(stdlib / "json").lstrip(os.sep) / "__init__.cpython-312.pyc"
    assert linked.is_file() and (linked.stat().st_nlink > 1) == (links == "allowed")
    before = {p: p.stat().st_ino for p in trees.pycache.rglob("*.pyc")}

    subprocess.run([str(PYTHON), "-I", "-X", f"pycache_prefix={trees.pycache}", "-c",
                    "import json, decimal, email.message, http.client"], check=True)

    after = {p: p.stat().st_ino for p in trees.pycache.rglob("*.pyc")}
    assert after == before  # nothing compiled, nothing replaced
    trees.bytecode.link_stdlib(PYTHON, version)  # once per cache: the second call finds its mark


def test_what_the_checks_will_import_is_compiled_before_the_rest(tmp_path: Path) -> None:
    """`Compiler.prefer`: named modules, and what their sources import (relative imports too), come first, even
    from the last wheel handed over; the rest only after. Stopped early, those are the ones in the store."""
    from builder.runtime.bytecode import Compiler

    assert PYTHON is not None
    filler = [layer(tmp_path / f"m{i}-1.0-py3-none-any.whl",
                    {f"m{i}/mod{j}.py": MODULE * 40 + f"N = {i * 100 + j}\n" for j in range(20)}).path
              for i in range(40)]
    wanted = {"shop/__init__.py": "from .models import Order\n",
              "shop/models.py": "import shop_helpers.money\nOrder = 1\n",
              "shop/unused.py": MODULE * 40 + "UNUSED = 1\n"}
    helpers = {"shop_helpers/__init__.py": "", "shop_helpers/money.py": "M = 1\n"}
    last = layer(tmp_path / "shop-1.0-py3-none-any.whl", wanted).path
    other = layer(tmp_path / "shop_helpers-1.0-py3-none-any.whl", helpers).path
    compiler = Compiler(PYTHON, tmp_path / "store")
    compiler.prefer(["shop"])
    for wheel in [*filler, last, other]:
        assert wheel is not None
        compiler.add_wheel(wheel)
    deadline = time.monotonic() + 30
    expected = {hashlib.sha256(text.encode()).hexdigest()
                for text in [wanted["shop/__init__.py"], wanted["shop/models.py"], *helpers.values()]}
    while time.monotonic() < deadline and not expected <= stored_shas(tmp_path / "store"):
        time.sleep(0.01)
    compiler.stop()

    stored = stored_shas(tmp_path / "store")
    assert expected <= stored, "the preferred modules and what they import were not compiled first"
    assert len(stored) < 800 * 0.5, "the preferred modules came only after most of the rest"


def stored_shas(store: Path) -> set[str]:
    return {p.stem for p in store.glob("*/*.pyc")}
