"""Bytecode shared between trees by what their sources hold: a module compiled once is compiled once.

The import check's interpreters keep what they compile under relay's pycache prefix, one file per
source path (`<pycache>/<tree's absolute path>/<module>.cpython-313.pyc`). A new tree (a layer
whose lock bumped two of its thirteen packages, the same layer built for another architecture, a
function bundle after one handler was edited) has new paths, so its unchanged modules would be
compiled again: on the real-app layer that is most of a check's cost.

So the bytecode is also kept by the sha256 of its source (`<cache>/bytecode/<tag>/<sha256>.pyc`,
`share`), and linked in for a new tree's sources with the same sha256 before anything imports
them (`seed`). Python accepts such a file: it validates a pyc by its source's size and mtime, and
every `.py` of a tree is given the same mtime (`normalise`, the zip's own timestamp); the size and
bytes are the same because the sha256 is; the code's file name is corrected on load
(`_imp._fix_co_filename`). A pyc Python does not accept is compiled again and replaced (atomically,
never written through the link), so a wrong guess costs only the compile it failed to save.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

# Every `.py` of a tree has this mtime (1980-01-01 00:00:00 UTC, what relay's zips say by default).
SOURCE_MTIME = 315532800
_PYC_SUFFIX = ".pyc"
# Standard library folders no handler imports from (tests, GUIs, third-party packages of that Python).
_STDLIB_SKIPPED = {"test", "tests", "idlelib", "tkinter", "turtledemo", "lib2to3", "site-packages", "dist-packages",
                   "ensurepip", "venv"}


def normalise(root: Path, known: dict[str, str] | None = None, *, listed: bool = False) -> dict[str, str]:
    """Give every `.py` under `root` the one mtime; return their sha256 by '/'-separated path relative to `root`.

    `known`: sha256 already known by that path (the installer hashed what it wrote): not read again;
    `listed`: `known` names every file under `root`, and those were written with the one mtime already
    (the installer's, `Trees.keep`'s copies): nothing is walked or touched.
    """
    known = known or {}
    if listed:
        return {rel: sha for rel, sha in known.items() if rel.endswith(".py")}
    found: dict[str, str] = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = Path(os.path.relpath(path, root)).as_posix()
                sha = known.get(rel)
                if sha is None:
                    with open(path, "rb") as handle:
                        sha = hashlib.file_digest(handle, "sha256").hexdigest()
                found[rel] = sha
                os.utime(path, (SOURCE_MTIME, SOURCE_MTIME), follow_symlinks=False)
    return found


def pyc_folder(pycache: Path, source: Path) -> Path:
    """Where Python puts the bytecode of `source` under the pycache prefix `pycache` (`-X pycache_prefix`)."""
    return prefixed(pycache, source.parent)


def prefixed(pycache: Path, folder: Path) -> Path:
    """Where Python puts the bytecode of the sources in `folder` under the pycache prefix `pycache`."""
    return pycache / str(folder).lstrip(os.sep)


class Shared:
    """The bytecode store: `<root>/<tag>/<sha256>.pyc`, tag as in `mod.cpython-313.pyc`."""

    def __init__(self, root: Path, pycache: Path) -> None:
        self.root = root
        self.pycache = pycache
        self._linking = threading.Lock()  # one `link_stdlib` at a time: a second caller waits, then finds it done

    def seed(self, tree: Path, sources: dict[str, str]) -> None:
        """Link the stored bytecode of each of `sources` (path in `tree` -> sha256) where Python looks for it."""
        tags = self._tags()
        made: set[Path] = set()
        for rel, sha in sources.items():
            source = tree / rel
            for tag in tags:
                stored = self.root / tag / f"{sha}{_PYC_SUFFIX}"
                if not stored.is_file():
                    continue
                folder = pyc_folder(self.pycache, source)
                if folder not in made:
                    folder.mkdir(parents=True, exist_ok=True)
                    made.add(folder)
                with contextlib.suppress(OSError):  # there already (compiled or linked before), or no links: no harm
                    os.link(stored, folder / f"{source.stem}.{tag}{_PYC_SUFFIX}")

    def link_stdlib(self, python: Path, version: str) -> None:
        """Link the standard library's own bytecode where Python looks for it under the pycache prefix.

        With `-X pycache_prefix` Python reads bytecode only there, never from the stdlib's `__pycache__`
        folders: a check in a new cache compiled every standard module it imported (~150 for the
        real-app handler, most of a cold check's time). Those files are valid as they are (Python
        checks them against their own sources), so they are linked in once per cache and Python. The
        build starts it while it downloads (`pipeline._Builder.prepare_checks`).
        """
        stdlib = python.resolve().parent.parent / "lib" / f"python{version}"
        done = self.pycache / f".stdlib-{hashlib.sha256(str(stdlib).encode()).hexdigest()[:16]}"
        with self._linking:
            if done.exists() or not (stdlib / "os.py").is_file():
                return
            self._link_stdlib(stdlib, f"cpython-{version.replace('.', '')}")
            with contextlib.suppress(OSError):
                done.touch()

    def _link_stdlib(self, stdlib: Path, tag: str) -> None:
        for folder, dirs, files in os.walk(stdlib):
            dirs[:] = [d for d in dirs if d not in _STDLIB_SKIPPED]
            if os.path.basename(folder) != "__pycache__":
                continue
            into = self.pycache / os.path.dirname(folder).lstrip(os.sep)
            into.mkdir(parents=True, exist_ok=True)
            for name in files:
                if name.endswith(f".{tag}{_PYC_SUFFIX}"):  # not the optimised `.opt-1` ones
                    _link_or_copy(os.path.join(folder, name), into / name)

    def share(self, trees: Iterable[tuple[Path, dict[str, str]]]) -> None:
        """Keep the bytecode compiled for `trees`' sources by their sha256, for trees yet to come.

        The build's last step: on strings, with each tag's store listed once (a stat and four path objects
        per source took ~15 ms of a cold real-app build).
        """
        stored: dict[str, set[str]] = {}  # tag -> the store's file names
        for tree, sources in trees:
            by_folder: dict[str, list[tuple[str, str]]] = {}
            for rel, sha in sources.items():
                folder, _, name = rel.rpartition("/")
                by_folder.setdefault(folder, []).append((name.removesuffix(".py"), sha))
            for folder, modules in by_folder.items():
                pycache = str(prefixed(self.pycache, tree / folder))
                try:
                    names = os.listdir(pycache)
                except OSError:
                    continue
                compiled = _by_stem(names)
                for stem, sha in modules:
                    for tag, name in compiled.get(stem, ()):
                        if tag not in stored:
                            (self.root / tag).mkdir(parents=True, exist_ok=True)
                            stored[tag] = set(os.listdir(self.root / tag))
                        kept = f"{sha}{_PYC_SUFFIX}"
                        if kept in stored[tag]:
                            continue
                        with contextlib.suppress(OSError):  # another build stored it first: the same bytes
                            os.link(os.path.join(pycache, name), os.path.join(self.root, tag, kept))
                        stored[tag].add(kept)

    def _tags(self) -> list[str]:
        try:
            return sorted(entry.name for entry in os.scandir(self.root) if entry.is_dir())
        except OSError:
            return []


def _link_or_copy(source: str, dest: Path) -> None:
    """`dest` as a link to `source`; a copy (put in place whole) where links are refused (another file system,
    or a file another user owns with protected hard links); left alone when it exists. Failing: compiled as before."""
    try:
        os.link(source, dest)
    except FileExistsError:
        return
    except OSError:
        staged = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        try:
            shutil.copyfile(source, staged)
            os.replace(staged, dest)
        except OSError:
            staged.unlink(missing_ok=True)


def _by_stem(names: list[str]) -> dict[str, list[tuple[str, str]]]:
    """`mod.cpython-313.pyc` -> {"mod": [("cpython-313", name)]}; optimised files (`opt-1`) are left out."""
    found: dict[str, list[tuple[str, str]]] = {}
    for name in names:
        if not name.endswith(_PYC_SUFFIX):
            continue
        stem, _, tag = name[: -len(_PYC_SUFFIX)].rpartition(".")
        if stem and tag and "opt-" not in tag and "." not in stem:
            found.setdefault(stem, []).append((tag, name))
    return found


# The compiler's loop, run by the runtime's Python. Each line on stdin names a wheel: every `.py` in it is
# compiled into the store by the sha256 of its source, as Python would compile it once installed (same
# bytes, the trees' one mtime; the code's file name is corrected on load), atomically as py_compile
# writes. A line "+a.b,c" names modules the checks will import (`Compiler.prefer`): those come first,
# then what their sources import (found by a regular expression: a guess, which only orders the work),
# then the rest in the order the wheels came. A line "=folder" (`Compiler.link_into`) says where Python
# will look for the bytecode of the installed wheels' sources (the pycache-prefix folder of the tree they
# were kept in): what it compiled, and compiles from then on, is linked there too. stdin closed: it
# finishes everything, then ends.
_COMPILE_LOOP = r"""
import hashlib, os, re, select, sys, zipfile
from collections import deque
from importlib._bootstrap_external import _code_to_timestamp_pyc
out = os.path.join(sys.argv[1], sys.implementation.cache_tag)
mtime = int(sys.argv[2])
os.makedirs(out, exist_ok=True)
IMPORTS = re.compile(rb"^[ \t]*(?:from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+\(?([\w, \t]*)|import[ \t]+([\w., \t]+))", re.M)
modules, rest, wanted, seen, waiting, done = {}, deque(), deque(), set(), set(), set()
stored_by_member, linked_into, folders = [], None, set()

def link(member, stored):
    if name_of(member) is None:  # not a module of the installed tree (the wheel's metadata, its .data)
        return
    folder = os.path.join(linked_into, os.path.dirname(member))
    try:
        if folder not in folders:
            os.makedirs(folder, exist_ok=True)
            folders.add(folder)
        name = os.path.basename(member)[:-3] + "." + sys.implementation.cache_tag + ".pyc"
        os.link(stored, os.path.join(folder, name))
    except OSError:
        pass

def name_of(path):
    if ".data/" in path or ".dist-info/" in path:
        return None
    parts = path[:-3].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) if parts and all(p.isidentifier() for p in parts) else None

def compiled(wheel, info):
    if (wheel.filename, info.filename) in done:
        return None
    done.add((wheel.filename, info.filename))
    try:
        data = wheel.read(info)
        stored = os.path.join(out, hashlib.sha256(data).hexdigest() + ".pyc")
        if not os.path.exists(stored):
            code = compile(data, info.filename, "exec", dont_inherit=True)
            staged = "%s.%d.tmp" % (stored, os.getpid())
            fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                view = memoryview(_code_to_timestamp_pyc(code, mtime, len(data)))
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            os.replace(staged, stored)
        stored_by_member.append((info.filename, stored))
        if linked_into is not None:
            link(info.filename, stored)
        return data
    except Exception:
        return None

def want(name):
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        wanted.append(".".join(parts[:i]))

def visit(name):
    if name not in modules:
        waiting.add(name)
        return
    wheel, info = modules[name]
    data = compiled(wheel, info)
    if not data:
        return
    package = name if info.filename.endswith("__init__.py") else name.rpartition(".")[0]
    for base, names, plain in IMPORTS.findall(data):
        if plain:
            for item in plain.split(b","):
                if item.split():
                    want(item.split()[0].decode("ascii", "replace"))
            continue
        base = base.decode("ascii", "replace")
        dots = len(base) - len(base.lstrip("."))
        if dots:
            anchor = package.split(".")[: max(0, len(package.split(".")) - (dots - 1))] if package else []
            base = ".".join(anchor + ([base.lstrip(".")] if base.lstrip(".") else []))
        if base:
            want(base)
            wanted.extend(base + "." + item.split()[0].decode("ascii", "replace") for item in names.split(b",") if item.split())

pending, is_open = b"", True
while True:
    ready = select.select([0], [], [], None if not (wanted or rest) else 0)[0] if is_open else []
    if ready:
        chunk = os.read(0, 65536)
        is_open = bool(chunk)
        lines, pending = (pending + chunk).split(b"\n"), b""
        if chunk:
            pending = lines.pop()
        for line in lines:
            text = line.decode("utf-8", "surrogateescape")
            if text.startswith("+"):
                for name in text[1:].split(","):
                    want(name)
            elif text.startswith("="):
                linked_into = text[1:]
                for member, stored in stored_by_member:
                    link(member, stored)
            elif text:
                try:
                    wheel = zipfile.ZipFile(text)
                except Exception:
                    continue
                for info in wheel.infolist():
                    if info.filename.endswith(".py"):
                        rest.append((wheel, info))
                        name = name_of(info.filename)
                        if name is not None:
                            modules.setdefault(name, (wheel, info))
                came = [name for name in waiting if name in modules]
                waiting.difference_update(came)
                seen.difference_update(came)
                wanted.extend(came)
    if wanted:
        name = wanted.popleft()
        if name not in seen:
            seen.add(name)
            visit(name)
    elif rest:
        compiled(*rest.popleft())
    elif not is_open:
        break
"""


class Compiler:
    """The runtime's Python compiling a layer's sources into the store while the layer is being installed.

    A cold build's first import check compiles every module the handler imports from its layer
    (~370 on the real-app layer), one after another, once the layer is installed. Installing is
    mostly the kernel creating files, on one core: this process compiles every `.py` of the wheels
    from the wheels themselves (so it starts at once, whatever the installer has reached), on the
    other, at a lower priority. What it finished by the time the tree is kept is linked in by
    `Shared.seed`. It goes on while the warm interpreter imports the layer's modules (`link_into`:
    what it compiles from then on is linked in as it is done, so the interpreter, one core, compiles
    less itself), and is stopped once the layer's first check is done (`stop`), unfinished work
    dropped: it has no other use in this build.
    """

    def __init__(self, python: Path, store: Path) -> None:
        import queue
        import subprocess
        import threading

        self._lines: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        try:
            self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                [str(python), "-I", "-S", "-c", _COMPILE_LOOP, str(store), str(SOURCE_MTIME)], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError:  # no compiler: the check compiles everything, as without one
            self._proc = None
            return
        with contextlib.suppress(OSError):  # below the build's own work: it only uses what is idle
            os.setpriority(os.PRIO_PROCESS, self._proc.pid, _COMPILER_NICENESS)
        # Fed from a thread: a full pipe must hold up the compiler's queue, never the install.
        self._feeder = threading.Thread(target=self._feed, args=(self._proc,), name="relay-compile", daemon=True)
        self._feeder.start()

    def add_wheel(self, wheel: Path) -> None:
        """Compile every `.py` of `wheel`, from the wheel itself: nothing waits for the installer to write it."""
        if self._proc is not None:
            self._lines.put(f"{wheel}\n".encode("utf-8", "surrogateescape"))

    def prefer(self, modules: list[str]) -> None:
        """Compile `modules` (what the checks will import, `static.init_imports`) and what they import first."""
        names = [name for name in modules if name and all(part.isidentifier() for part in name.split("."))]
        if self._proc is not None and names:
            self._lines.put(f"+{','.join(names)}\n".encode())

    def link_into(self, folder: Path) -> None:
        """Link what it compiled, and compiles from now on, into `folder` (where Python looks for the bytecode
        of the sources installed from the wheels: `prefixed(pycache, installed root)`)."""
        if self._proc is not None:
            self._lines.put(f"={folder}\n".encode("utf-8", "surrogateescape"))

    def stop(self, *, finish: bool = False) -> None:
        """End it now: what it compiled stays in the store, what it had not reached is dropped.

        `finish`: compile everything added first (what a test of the compiled files waits for).
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return
        self._lines.put(None)
        if finish:
            self._feeder.join()
            proc.wait(timeout=120)
        else:
            with contextlib.suppress(OSError):
                proc.kill()
            proc.wait()
            self._feeder.join()

    def _feed(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None
        with contextlib.suppress(OSError):  # the compiler ended (stopped): the rest is dropped
            while (line := self._lines.get()) is not None:
                proc.stdin.write(line)
                proc.stdin.flush()
        with contextlib.suppress(OSError):
            proc.stdin.close()


_COMPILER_NICENESS = 5
