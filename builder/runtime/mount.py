"""Where Lambda puts a function's code, and the sys.path it builds from it.

Lambda unpacks the function zip as the task root, `/var/task`, and each
layer zip, in the function's order, into `/opt` (a later layer overwrites
an earlier one's files). Its Python runtime then puts on sys.path, in this
order: the task root, `/opt/python/lib/pythonX.Y/site-packages`,
`/opt/python`, the standard library, and last the runtime's own packages
(`/var/runtime`, see `provided.py`). relay mounts the same folders under a
temporary root and shows them by Lambda's names in errors.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import attrs

from builder.fsutil import extract_zip, write_members, zip_member
from builder.runtime.bytecode import SOURCE_MTIME, Shared, normalise
from builder.runtime.provided import link_provided, provided_versions

TASK_ROOT = "/var/task"
OPT = "/opt"
RUNTIME_DIR = "/var/runtime"


@attrs.frozen
class Mount:
    """A function mounted under a local root: task (`/var/task`), opt (`/opt`), runtime (`/var/runtime`)."""

    task: Path
    opt: Path
    runtime: Path

    def path_before_stdlib(self, python: str) -> list[str]:
        """The sys.path entries ahead of the standard library under Python `python` ("3.12")."""
        site = self.opt / "python" / "lib" / f"python{python}" / "site-packages"
        return [str(self.task), str(site), str(self.opt / "python")]

    def path_after_stdlib(self) -> list[str]:
        return [str(self.runtime)]

    def shown_as(self) -> dict[str, str]:
        """Each local folder and the name Lambda gives it."""
        return {str(self.task): TASK_ROOT, str(self.opt): OPT, str(self.runtime): RUNTIME_DIR}


def mount_bundles(bundle: Path, layers: tuple[Path, ...] | list[Path], root: Path) -> Mount:
    """Unpack `bundle` as `root/task`, `layers` (in order) into `root/opt`, and link the runtime's packages."""
    task, opt, runtime = root / "task", root / "opt", root / "runtime"
    extract_zip(bundle, task)
    opt.mkdir(parents=True, exist_ok=True)
    for layer in layers:
        extract_zip(layer, opt)
    link_provided(runtime)
    return Mount(task=task, opt=opt, runtime=runtime)


@attrs.frozen
class Zipped:
    """A bundle's zip and the digest that names its unpacked tree.

    relay names a tree by the bundle's content digest (its files' paths, modes and contents,
    `zipwriter.BundleStats.content_digest`): known as soon as the files are, before they are zipped,
    so a layer's tree can be checked while its zip is still being written (`path` is then None: the
    tree is already kept). Any digest that changes with the zip's files would do.
    """

    path: Path | None
    digest: str


class Trees:
    """Bundles unpacked once and kept, named by their digest: what the import check mounts.

    `<cache>/trees/<digest>/` is one bundle's files (see `Zipped`); `opt-<digest>/` the `/opt`
    of several layers unpacked in order (one layer is its own tree); `runtime-<digest>/`
    the provided packages linked for this relay. A tree is unpacked into a
    temp folder and renamed into place, so it exists only once complete; its
    files are made read-only, as Lambda's `/var/task` and `/opt` are. A bundle
    relay has just built is not unpacked at all: the folder it was zipped from
    becomes its tree (`keep`). Paths of
    a tree never change content, which is what lets bytecode compiled from
    them be kept (`pycache`); it is also kept by its source's sha256 and
    linked into a new tree holding the same source (`bytecode.py`).
    """

    def __init__(self, cache: Path) -> None:
        self.root = cache / "trees"
        self.pycache = cache / "pycache"
        self.bytecode = Shared(cache / "bytecode", self.pycache)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._warmed: dict[Path, threading.Event] = {}
        self._made: dict[Path, dict[str, str]] = {}  # trees made by this process: their sources' sha256

    def mount(self, bundle: Zipped, layers: Sequence[Zipped]) -> Mount:
        return Mount(task=self.tree(bundle), opt=self.opt(layers), runtime=self.runtime())

    def tree(self, zipped: Zipped) -> Path:
        return self._once(zipped.digest, lambda into: _unpack(_zip_of(zipped), into))

    def opt(self, layers: Sequence[Zipped]) -> Path:
        if len(layers) == 1:
            return self.tree(layers[0])
        digest = hashlib.sha256(" ".join(layer.digest for layer in layers).encode()).hexdigest()

        def unpack_in_order(into: Path) -> None:
            for layer in layers:  # a later layer overwrites an earlier one's files, as in /opt
                _unpack(_zip_of(layer), into)

        return self._once(f"opt-{digest}", unpack_in_order)

    def keep(self, digest: str, folder: Path, copies: Iterable[tuple[str, Path, int]] = (),
             known: dict[str, str] | None = None, listed: bool = False) -> Path:
        """Make `folder`, the files of the bundle whose content digest is `digest`, its tree: nothing is unpacked.

        When that tree exists already, `folder` is left where it is. The tree's folder is returned.

        `folder` is on the cache's file system (it is moved, not copied) and its files are already
        read-only with their zip modes, each `.py` with the trees' one mtime (`bytecode.SOURCE_MTIME`, as
        the installer writes them); `copies` are the zip's other members (archive path, file, mode),
        written so. What the tree then holds is what the zip holds, as if it had been unpacked.
        `known`: the sha256 of files by archive path, when the caller has them (not read again); `listed`:
        `known` names every file the tree will hold (the tree is then not walked).
        """
        members = list(copies)

        def place(into: Path) -> None:
            if folder.is_dir():
                os.rename(folder, into)  # over the empty staging folder
            write_members(into, ((name, mode & ~0o222, source.read_bytes()) for name, source, mode in members))
            for name, _, _ in members:  # as the installer writes them: `normalise` need not touch the tree
                if name.endswith(".py"):
                    os.utime(zip_member(into, name), (SOURCE_MTIME, SOURCE_MTIME))

        return self._once(digest, place, known, listed)

    def runtime(self) -> Path:
        # The provided packages are relay's own environment's: a new version of them is a new folder.
        where = json.dumps([sys.prefix, provided_versions()], sort_keys=True).encode()
        return self._once(f"runtime-{hashlib.sha256(where).hexdigest()[:32]}", link_provided)

    @contextlib.contextmanager
    def first_alone(self, mount: Mount) -> Iterator[None]:
        """The first run over a mount's layers goes alone; the others of this process wait for it, then overlap.

        The first interpreter compiles what the layers hold into `pycache`; the others then load that
        bytecode instead of each compiling the same modules at the same time.
        """
        with self._guard:
            done = self._warmed.get(mount.opt)
            first = done is None
            if done is None:
                done = self._warmed[mount.opt] = threading.Event()
        if not first:
            done.wait()
            yield
            return
        try:
            yield
        finally:
            done.set()

    def share_bytecode(self) -> None:
        """Keep what was compiled for the trees this process made by their sources' sha256 (`bytecode.Shared`)."""
        with self._guard:
            made, self._made = self._made, {}
        self.bytecode.share(made.items())

    def _once(self, name: str, fill: Callable[[Path], object], known: dict[str, str] | None = None,
              listed: bool = False) -> Path:
        folder = self.root / name
        if folder.is_dir():
            return folder
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:  # threads of one build wait for the first; other processes race to the rename
            if folder.is_dir():
                return folder
            self.root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{name[:16]}-", dir=self.root))
            try:
                fill(staging)
                sources = normalise(staging, known, listed=listed)  # before anything compiles them: one mtime for all
                os.chmod(staging, 0o755)
                os.rename(staging, folder)
            except OSError:
                if not folder.is_dir():
                    raise
                return folder
            finally:
                if staging.exists():
                    shutil.rmtree(staging, ignore_errors=True)
            # Bytecode of the same sources compiled for other trees, linked in before any check imports them.
            with contextlib.suppress(OSError):
                self.bytecode.seed(folder, sources)
            with self._guard:
                self._made[folder] = sources
        return folder


def _zip_of(zipped: Zipped) -> Path:
    if zipped.path is None:  # kept before it was zipped: its tree exists, or was deleted under a running build
        raise FileNotFoundError(f"the unpacked files of {zipped.digest[:12]} are gone from relay's cache")
    return zipped.path


def _unpack(archive: Path, dest: Path) -> None:
    """A tree's files: read-only, as Lambda's /var/task and /opt are."""
    extract_zip(archive, dest, read_only=True)
