"""`relay build`: sources + locks -> dist/*.zip + manifests, cached by inputs.

What is built comes from `targets`, which files of the project each bundle
ships from `selection` (a file that looks like a secret stops the build before
anything is written), the records it returns are in `results`, and everything
it writes to dist/ goes through `builder.dist`.

Layers are built first (a function's manifest names its layers' digests), then
functions, each in parallel. A bundle is built by named steps (inputs, install,
strip, package, limits, import-check, manifest); a failure inside a step
becomes `BuildFailed(step, reason)`. A bundle whose inputs (lock, source tree,
runtime, architecture, relay version) are unchanged is taken from the build
cache and not rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Protocol, TypeVar

import attrs

from builder import __version__, dist
from builder.bundle import install, limits, wheels
from builder.bundle.cache import BuildCache, CachedBundle, Verdicts
from builder.bundle.cores import available_cores
from builder.bundle.digest import sha256_file, tree_digest
from builder.bundle.gitinfo import GitView, git_view
from builder.bundle.importcheck import (
    ImportCheck,
    Origin,
    Source,
    Trees,
    WarmInterpreters,
    Zipped,
    check_handler,
    guess_preload,
    model_fingerprint,
    plan_check,
)
from builder.bundle.layout import bundle_entries
from builder.bundle.results import BuildResult, BundleResult, Download
from builder.bundle.selection import LAYER_ROOT, Selection, refuse_secrets
from builder.bundle.targets import Target, select_targets
from builder.bundle.zipwriter import EXEC_MODE, FILE_MODE, BundleStats, ZipEntry, contributors, write_zip, zip_epoch
from builder.config import Project
from builder.errors import BuildFailed, LockStale, RelayError
from builder.frozen import to_tuple
from builder.lock.lockfile import LockedRequirement, LockFile, read_lock
from builder.lock.targets import lock_target_of
from builder.models import LayerRef, LockInfo, Manifest
from builder.paths import cache_dir
from builder.progress import Reporter, SilentReporter
from builder.runtime.bytecode import Compiler, prefixed

T = TypeVar("T")
R = TypeVar("R")
# Bump when the bytes relay writes for the same inputs change.
LAYOUT_VERSION = "2"
# Bump when what a passing import check guarantees changes (its cached verdicts are then checked again).
CHECK_VERSION = "2"


class RemoteCache(Protocol):
    """The registry's build cache (builder.registry.cache.RemoteCache): shared by a fleet of runners."""

    def lookup(self, app: str, build_key: str) -> tuple[Manifest, bytes] | None: ...

    def store(self, app: str, manifest: Manifest, zip_path: Path) -> bool: ...


@attrs.frozen
class BuildOptions:
    use_cache: bool = True
    import_check: bool = True
    offline: bool = False
    jobs: int | None = None
    remote_cache: RemoteCache | None = None
    epoch: int | None = None  # the zip timestamp; default SOURCE_DATE_EPOCH (clamped) or 1980-01-01


@attrs.frozen
class Prepared:
    """A bundle's inputs, and its cached bytes when those inputs were built before."""

    target: Target
    selection: Selection
    lock: LockFile | None
    source_sha256: str
    source_paths: tuple[str, ...] = attrs.field(converter=to_tuple)
    key: str = ""
    cached: CachedBundle | None = None
    status: str = "cached"
    started: float = 0.0


def build_project(
    project: Project,
    names: tuple[str, ...] = (),
    *,
    options: BuildOptions = BuildOptions(),
    reporter: Reporter | None = None,
    git: GitView | None = None,
) -> BuildResult:
    """Build `names` (default: everything); `git`: git's view of the project when the caller has it already."""
    reporter = reporter or SilentReporter()
    started = time.monotonic()
    layer_targets, function_targets = select_targets(project, names)
    # How each function will be checked: the runtime's Python is run to be found (~20 ms, a process of its own),
    # meanwhile. Its answer is kept (`find_python`): whoever asks first after it is done does not run it again.
    if options.import_check:
        architectures = sorted({target.architecture for target in function_targets})

        def probe() -> None:
            with contextlib.suppress(Exception):  # the build's own call says what is wrong, as a build error
                for arch in architectures:
                    plan_check(project.runtime, arch)

        threading.Thread(target=probe, name="relay-probe", daemon=True).start()
    # What every bundle ships, first: a secret anywhere stops the build before dist/ is touched.
    git = git if git is not None else git_view(project.root)
    selections: dict[tuple[str, str], Selection] = {}
    for target in [*layer_targets, *function_targets]:
        if (target.kind, target.name) not in selections:
            selections[(target.kind, target.name)] = target.selection(project, git)
    refuse_secrets(selections.values())
    jobs = options.jobs or available_cores()
    builder = _Builder(project, options, reporter, git, selections)
    previous = dist.build_stamps(project)
    cpu = _cpu_seconds()
    try:
        results = _build(builder, layer_targets, function_targets, jobs)
        dist.write_index(project)
    except BaseException:
        # A half-done build leaves dist/ marked failed, naming what it did not finish: publish refuses it.
        dist.mark_failed(project, [t.label for t in [*layer_targets, *function_targets] if t.bundle not in builder.finished])
        raise
    finally:
        for key in builder.compiling():
            builder.stop_compiling(key)
        builder.warm.close()
        builder.trees.share_bytecode()
    dist.stamp_build(project, {r.manifest.bundle_name: r.manifest.build_key for r in results}, previous)
    return BuildResult(app=project.name, dist=project.dist_dir, bundles=results, seconds=time.monotonic() - started,
                       cpu_seconds=_cpu_seconds() - cpu, jobs=jobs, downloads=builder.downloads)


def _cpu_seconds() -> float:
    """User + system time of relay and the children it waited for (pip, the import checks' interpreters)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def _build(builder: _Builder, layer_targets: list[Target], function_targets: list[Target],
           jobs: int) -> tuple[BundleResult, ...]:
    # Every bundle's inputs first, then one download per platform for all that must be built.
    # Then one pool runs everything else with no barrier between steps: each layer is packaged and
    # finished; each function is packaged (once per build key: five handlers of one package share
    # one build), import-checked as soon as its layers' files are in place (while a layer's zip is
    # still being written) and finished (limits, manifest) once its layers are, so one function's
    # zip, another's check and a layer's install or zip overlap on all cores.
    prepared = _run_parallel(builder.prepare, [*layer_targets, *function_targets], jobs)
    builder.prepare_checks([p for p in prepared if p.cached is None])
    prepared_layers, prepared_functions = prepared[: len(layer_targets)], prepared[len(layer_targets):]
    # The download runs beside the pool: a bundle installs each of its wheels as soon as it arrives.
    # Layers have threads of their own beside the `jobs` that functions use: a layer's zip (written on
    # threads of its own) never holds back the functions whose checks only need the layer's files.
    with (ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-download") as downloading,
          ThreadPoolExecutor(max_workers=jobs + len(prepared_layers), thread_name_prefix="relay-build") as pool):
        builder.fetch_wheels([p for p in prepared if p.cached is None], downloading)
        # Layers are queued first: a function's task waits only for layer tasks already running or done.
        layer_futures = [pool.submit(lambda p: builder.finish(builder.package(p), []), p) for p in prepared_layers]
        by_layer = {(p.target.name, p.target.architecture): (p.key, f)
                    for p, f in zip(prepared_layers, layer_futures, strict=True)}

        def function(p: Prepared) -> BundleResult:
            packaged = builder.package(p)
            fn = p.target.function
            assert fn is not None
            layers = [by_layer[(name, fn.architecture)] for name in fn.layers]
            preload = builder.preload_for(packaged, [key for key, _ in layers])  # while its layers are built
            try:
                check = builder.import_check(packaged, [builder.tree_of(key) for key, _ in layers], preload)
            finally:  # the warm interpreter has imported what the compilers of its bundle and layers were there for
                for key in [p.key, *(key for key, _ in layers)]:
                    builder.stop_compiling(key)
            return builder.finish(packaged, [future.result() for _, future in layers], check)

        futures = [*layer_futures, *(pool.submit(function, p) for p in prepared_functions)]
        results = tuple(_results(futures))
    builder.downloads = builder.fetched()
    return results


def _results(futures: list[Future[R]]) -> list[R]:
    """Every result; on a failure, what has not started is cancelled and the first failure in config order raised."""
    _, pending = wait(futures, return_when=FIRST_EXCEPTION)
    for future in pending:
        future.cancel()
    wait([f for f in futures if not f.cancelled()])
    for future in futures:
        failure = future.exception() if not future.cancelled() else None
        if failure is not None:
            raise failure
    return [f.result() for f in futures]


def _run_parallel(work: Callable[[T], R], targets: list[T], jobs: int | None) -> list[R]:
    if not targets:
        return []
    workers = max(1, min(jobs or available_cores(), len(targets)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="relay-build") as pool:
        return _results([pool.submit(work, t) for t in targets])


class Once:
    """Work done once per key by whichever thread asks first; the others wait for its result (or its error)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._futures: dict[str, Future] = {}

    def run(self, key: str, work: Callable[[], R]) -> tuple[R, bool]:
        """(the result, whether this call computed it)."""
        with self._guard:
            future = self._futures.get(key)
            first = future is None
            if future is None:
                future = self._futures[key] = Future()
        if first:
            try:
                future.set_result(work())
            except BaseException as exc:
                future.set_exception(exc)
        return future.result(), first


@contextlib.contextmanager
def step(name: str, target: Target) -> Iterator[None]:
    """Turn an unexpected failure inside a named step into BuildFailed(step, reason)."""
    try:
        yield
    except RelayError:
        raise
    except (OSError, ValueError) as exc:
        raise BuildFailed(name, f"{target.label}: {exc}") from exc


class _Builder:
    def __init__(self, project: Project, options: BuildOptions, reporter: Reporter, git: GitView,
                 selections: dict[tuple[str, str], Selection]) -> None:
        self.project = project
        self.options = options
        self.reporter = reporter
        self.cache_root = cache_dir()
        self.cache = BuildCache(self.cache_root)
        self.wheels = wheels.WheelCache(self.cache_root)
        self.epoch = options.epoch if options.epoch is not None else zip_epoch()
        self.git = git
        self.selections = selections
        self.finished: set[str] = set()  # bundles written to dist/ by this run
        self.verdicts = Verdicts(self.cache_root)
        self.trees = Trees(self.cache_root)
        self.warm = WarmInterpreters(self.cache_root / "warm")  # one per layer set, stopped when the build ends
        self._packaged = Once()  # build key -> its bundle, built by the first function that needs it
        self._checked = Once()  # verdict key -> the check, run by the first function with those inputs
        self._trees: dict[str, Future[Zipped]] = {}  # build key -> the bundle's files, as soon as they are kept
        self._guard = threading.Lock()  # `_trees` above and the three below, shared by the build's threads
        self._preloads: set[tuple[str, ...]] = set()  # layer sets whose first function resolved its imports
        self._compilers: dict[str, Compiler] = {}  # build key -> its compiler, until its first check is done
        self._preferred: dict[str, list[str]] = {}  # layer build key -> modules its functions import, to compile first
        self.downloads: list[Download] = []  # what `fetch_wheels` downloaded, for the build's result
        self.arrivals = wheels.Arrivals(self.wheels, project.runtime)  # the wheels downloading, as they arrive
        self._fetching: Future[list[Download]] | None = None
        self.project.dist_dir.mkdir(parents=True, exist_ok=True)

    # -- per bundle ---------------------------------------------------------------------------

    def prepare(self, target: Target) -> Prepared:
        started = time.monotonic()
        if target.function is not None:
            limits.check_layer_count(target.name, target.function.layers)
        selection = self.selections[(target.kind, target.name)]
        with step("inputs", target):
            lock = self._lock(target)
            source_sha = self._source_digest(selection)
            key = self._build_key(target, lock, source_sha, selection)
        cached = self.cache.get(key) if self.options.use_cache else None
        status = "cached"
        if cached is None and self.options.use_cache and self.options.remote_cache is not None:
            cached = self._from_remote(target, key)
            status = "remote"
        return Prepared(target, selection, lock, source_sha, selection.paths, key, cached, status=status,
                        started=started)

    def _from_remote(self, target: Target, key: str) -> CachedBundle | None:
        assert self.options.remote_cache is not None
        hit = self.options.remote_cache.lookup(self.project.name, key)
        if hit is None:
            return None
        manifest, data = hit
        self.reporter.step(f"{target.label}: taken from the registry's build cache")
        with tempfile.TemporaryDirectory(prefix="relay-remote-") as tmp:
            zip_path = Path(tmp) / "bundle.zip"
            zip_path.write_bytes(data)
            return self.cache.put(key, zip_path, stats_of_zip(zip_path, manifest))

    def prepare_checks(self, to_build: list[Prepared]) -> None:
        """What the import checks of `to_build` need from this machine, made in the background while the
        wheels download (which leaves the cores idle): the runtime's packages and its standard library's
        bytecode in place."""
        if not self.options.import_check:
            return
        pythons = {plan.interpreter.path: plan.interpreter for p in to_build if p.target.function is not None
                   if (plan := plan_check(self.project.runtime, p.target.architecture)).interpreter is not None
                   and not plan.interpreter.launcher}

        def link() -> None:
            with contextlib.suppress(OSError):  # the check makes them itself, and says why if it cannot
                self.trees.runtime()  # the runtime's own packages, linked
                for python in pythons.values():
                    self.trees.bytecode.link_stdlib(python.path, python.version)

        if pythons:
            threading.Thread(target=link, name="relay-stdlib", daemon=True).start()

    def fetch_wheels(self, to_build: list[Prepared], downloading: ThreadPoolExecutor) -> None:
        """Every locked wheel not in the cache yet, once per platform (from the index, or with pip: `wheels.fetch`),
        on `downloading`: each is in `arrivals` as soon as it is filed, and `fetched` waits for the end."""
        by_arch: dict[str, list[LockFile]] = {}
        for prepared in to_build:
            if prepared.lock is not None:
                by_arch.setdefault(prepared.target.architecture, []).append(prepared.lock)
        runtime = self.project.runtime
        work = [(arch, wheels.missing(locks, self.wheels, runtime, arch)) for arch, locks in sorted(by_arch.items())]
        work = [(arch, reqs) for arch, reqs in work if reqs]
        if work and self.options.offline:
            missing = "; ".join(f"{runtime}/{arch}: {', '.join(f'{r.name}=={r.version}' for r in reqs)}"
                                for arch, reqs in work)
            raise BuildFailed("download", f"not in the wheel cache: {missing}",
                              hint="Run once without --offline to fill the wheel cache.")
        for arch, reqs in work:
            self.reporter.step(f"downloading {len(reqs)} wheels for {runtime}/{arch} {wheels.source()}")
            self.arrivals.expect(arch, reqs)

        def download(item: tuple[str, list]) -> Download:
            arch, reqs = item
            fetched = wheels.fetch(reqs, self.wheels, runtime=runtime, arch=arch, offline=self.options.offline,
                                   jobs=self.options.jobs or available_cores(), reporter=self.reporter,
                                   arrived=lambda req, wheel: self.arrivals.arrived(arch, req, wheel))
            return Download(runtime, arch, len(reqs), fetched)

        def download_all() -> list[Download]:
            try:
                done = _run_parallel(download, work, None)
            except BaseException as exc:  # whoever waits for a wheel that did not arrive fails with it
                self.arrivals.settle(exc)
                raise
            self.arrivals.settle()
            return done

        if work:
            self._fetching = downloading.submit(download_all)

    def fetched(self) -> list[Download]:
        """What `fetch_wheels` downloaded, once it has ended (its failure, if it failed)."""
        return self._fetching.result() if self._fetching is not None else []

    def package(self, prepared: Prepared) -> Prepared:
        """The bundle's bytes in the build cache: built once per build key (however many functions share it)."""
        if prepared.cached is not None:
            self._tree_ready(prepared.key, Zipped(prepared.cached.zip_path, prepared.cached.stats.content_digest))
            return prepared
        cached, built_here = self._packaged.run(prepared.key, lambda: self._package(prepared))
        if not built_here:
            self.reporter.step(f"{prepared.target.label}: same inputs as a bundle built in this run, shared")
        return attrs.evolve(prepared, cached=cached, status="built")

    def tree_of(self, key: str) -> Zipped:
        """The files of the bundle with build key `key`, once they are in place for the import check (waits)."""
        return self._tree_future(key).result()

    def _tree_future(self, key: str) -> Future[Zipped]:
        with self._guard:
            return self._trees.setdefault(key, Future())

    def _tree_ready(self, key: str, zipped: Zipped | BaseException) -> None:
        future = self._tree_future(key)
        with self._guard:
            if future.done():
                return
            if isinstance(zipped, BaseException):
                future.set_exception(zipped)
            else:
                future.set_result(zipped)

    def _package(self, prepared: Prepared) -> CachedBundle:
        try:
            return self._install_and_zip(prepared)
        except BaseException as exc:  # the functions waiting for this bundle's files fail with it
            self._tree_ready(prepared.key, exc)
            raise

    def _install_and_zip(self, prepared: Prepared) -> CachedBundle:
        target = prepared.target
        self.reporter.step(f"{target.label}: building")
        # On the cache's file system: what was installed is moved into the check's tree, not copied.
        scratch = self.cache_root / "tmp"
        scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"relay-{target.bundle}-", dir=scratch) as tmp:
            # Installed where the zip has them (a layer's under python/): the folder can become the tree.
            tree = Path(tmp) / "tree"
            installed = tree / LAYER_ROOT if target.kind == "layer" else tree
            unpacked: dict[str, install.Unpacked] = {}  # files installed, by path: their sha256 (not read again)
            files: dict[str, bool] = {}  # every file installed and kept, by path: executable
            compiler = None
            if (lock := prepared.lock) is not None and lock.requirements:
                compiler = self._compiler(target, prepared.key)

                def arriving() -> Iterator[tuple[LockedRequirement, Path]]:
                    for req, wheel in self.arrivals.wheels(lock, target.architecture):
                        if compiler is not None:
                            compiler.add_wheel(wheel)
                        yield req, wheel

                try:
                    with step("install", target):
                        unpacked = install.install(arriving(), installed)
                    with step("strip", target):
                        from builder.bundle import strip

                        # What the installer wrote is known: nothing below is walked.
                        remaining = strip.strip_installed(installed, unpacked)
                        strip.rewrite_records(installed, fresh=True, files=remaining)
                        files = {path: unpacked[path].executable for path in remaining}
                        # The RECORDs it rewrote: their installed digests (and bytes) are stale.
                        unpacked = {path: what for path, what in unpacked.items()
                                    if path in remaining and not path.endswith(strip.RECORD_SUFFIX)}
                except BaseException:
                    self.stop_compiling(prepared.key)
                    raise
            with step("package", target):
                # A file still as its wheel has it is zipped from the wheel's deflate stream (`zipwriter.Packed`).
                entries = [attrs.evolve(e, packed=what.packed) if (what := unpacked.get(str(e.source))) else e
                           for e in bundle_entries(prepared.selection, installed, files)]
            # The files are final: kept as the check's tree now, so functions are checked while this zip is written.
            kept = None
            try:
                kept = self._keep_tree(target, tree, entries, unpacked) if self.options.import_check else None
            finally:
                if compiler is not None and kept is not None:  # it goes on for the checks (`Compiler.link_into`)
                    compiler.link_into(prefixed(self.trees.pycache, kept[2] / installed.relative_to(tree)))
                else:
                    self.stop_compiling(prepared.key)
            if kept is not None:
                digest, entries, _ = kept
                self._tree_ready(prepared.key, Zipped(None, digest))
            with step("package", target):
                zip_path = Path(tmp) / "bundle.zip"
                stats = write_zip(entries, zip_path, epoch=self.epoch)
                if kept is not None and stats.content_digest != kept[0]:
                    raise BuildFailed("package", f"{target.label}: its files changed while they were being zipped",
                                      hint="Run the build again; if it repeats, delete relay's cache (RELAY_CACHE_DIR).")
                limits.check_bundle(target.bundle, stats)
                cached = self.cache.put(prepared.key, zip_path, stats)
            self._tree_ready(prepared.key, Zipped(cached.zip_path, stats.content_digest))
            return cached

    def compiling(self) -> list[str]:
        """The build keys whose compilers still run."""
        with self._guard:
            return list(self._compilers)

    def stop_compiling(self, key: str) -> None:
        """Stop the compiler of the bundle with build key `key` (its first check is done, or it failed), if any."""
        with self._guard:
            compiler = self._compilers.pop(key, None)
        if compiler is not None:
            compiler.stop()

    def _compiler(self, target: Target, key: str) -> Compiler | None:
        """The runtime's Python compiling the wheels' sources while they install, when the check will import them
        here; first what functions of this build on this bundle (a layer, build key `key`) import (`preload_for`)."""
        if not self.options.import_check:
            return None
        plan = plan_check(self.project.runtime, target.architecture)
        if plan.interpreter is None or plan.interpreter.launcher:  # static, or emulated: too slow to help
            return None
        compiler = Compiler(plan.interpreter.path, self.trees.bytecode.root)
        with self._guard:
            self._compilers[key] = compiler
            preferred = self._preferred.get(key, [])
        compiler.prefer(preferred)
        return compiler

    def _keep_tree(self, target: Target, tree: Path, entries: list[ZipEntry],
                   unpacked: dict[str, install.Unpacked]) -> tuple[str, list[ZipEntry], Path] | None:
        """Make the bundle's files its tree for the import check, named by their content digest (not unpacked again).

        Returns the digest, the entries to zip (read from the kept tree when `tree` was moved there) and the
        tree. None when the files could not be kept (the check then unpacks the zip).
        """
        copies = [(e.path, e.source, _mode(e)) for e in entries
                  if not e.source.is_relative_to(tree)]  # the project's own files, shipped as they are
        try:
            with step("package", target):
                digest, shas = _content_digest(entries, {path: what.sha256 for path, what in unpacked.items()})
            had_tree = tree.is_dir()  # its folders all hold a file the zip has (`strip.strip_installed`)
            kept = self.trees.keep(digest, tree, copies, known=shas, listed=True)
        except OSError as exc:  # the check unpacks the zip instead
            self.reporter.note(f"{target.label}: could not keep its unpacked files ({exc}); the import check unpacks the zip")
            return None
        if had_tree and not tree.exists():  # moved: the zip reads the same files where they now are
            entries = [attrs.evolve(e, source=kept / e.path) for e in entries]
        return digest, entries, kept

    def preload_for(self, prepared: Prepared, layer_keys: list[str]) -> list[str] | None:
        """What a freshly built function's handler imports from outside its bundle: what the warm interpreter
        of its layers (build keys `layer_keys`) imports ahead (`importcheck.guess_preload`). Only for the
        first function of a layer set: the later ones' checks find the server started."""
        fn, cached = prepared.target.function, prepared.cached
        if fn is None or cached is None or prepared.status != "built" or not self.options.import_check:
            return None  # a bundle from the cache was most likely checked before: its verdict is kept
        with self._guard:
            layer_set = (fn.architecture, *layer_keys)
            if layer_set in self._preloads:
                return None
            self._preloads.add(layer_set)
        preload = guess_preload(Zipped(cached.zip_path, cached.stats.content_digest), fn.handler,
                                plan=plan_check(self.project.runtime, fn.architecture), trees=self.trees)
        with self._guard:  # the layers' compilers (running or to come) take these first
            compilers = [self._compilers.get(key) for key in layer_keys]
            for key in layer_keys:
                self._preferred.setdefault(key, []).extend(preload or ())
        for compiler in compilers:
            if compiler is not None:
                compiler.prefer(preload or [])
        return preload

    def import_check(self, prepared: Prepared, layers: list[Zipped],
                     preload: list[str] | None = None) -> ImportCheck | None:
        """A function's import check, on its files and its layers' (`tree_of`); before it reaches dist/."""
        cached = prepared.cached
        assert cached is not None
        return self._import_check(prepared.target, Zipped(cached.zip_path, cached.stats.content_digest), layers,
                                  preload)

    def finish(self, prepared: Prepared, layers: list[BundleResult], check: ImportCheck | None = None) -> BundleResult:
        target, cached = prepared.target, prepared.cached
        assert cached is not None
        with step("limits", target):
            limits.check_bundle(target.bundle, cached.stats)
            if target.kind == "function":
                limits.check_function(target.name, cached.stats, {r.manifest.name: r.stats for r in layers})
        # A function's check (`import_check`) ran before this: a bundle that fails is never left in dist/.
        manifest = self._manifest(prepared, cached.stats, layers)
        with step("manifest", target):
            written = dist.write_bundle(self.project.dist_dir, cached.zip_path, manifest)
        self.finished.add(target.bundle)
        status = "unchanged" if prepared.status == "cached" and not written.changed else prepared.status
        if status == "built" and self.options.remote_cache is not None:
            self.options.remote_cache.store(self.project.name, manifest, cached.zip_path)
        if status != "unchanged":
            self.reporter.step(f"{target.label}: {status}, {cached.stats.files} files, sha256 {cached.stats.sha256[:12]}")
        return BundleResult(manifest, written.zip_path, written.manifest_path, status, time.monotonic() - prepared.started,
                            cached.stats, check)

    # -- steps ----------------------------------------------------------------------------------

    def _lock(self, target: Target) -> LockFile | None:
        locked = lock_target_of(self.project, target.kind, target.name)
        if locked is None:
            return None
        lock_path = locked.lock
        if not lock_path.is_file():
            raise LockStale(f"{target.label}: no lock for {locked.reference(self.project.root)}")
        lock = read_lock(lock_path)
        if lock.input_sha256 != locked.input_sha256():
            raise LockStale(f"{target.label}: {self._rel(lock_path)} is stale: {locked.what_changed(self.project.root)}")
        if lock.runtime and lock.runtime != self.project.runtime:
            raise LockStale(f"{target.label}: {self._rel(lock_path)} was resolved for {lock.runtime}, not {self.project.runtime}")
        return lock

    def _source_digest(self, selection: Selection) -> str:
        """The digest of exactly the files the bundle ships from the project (project-relative paths)."""
        return tree_digest((p.path, 0o755 if p.executable else 0o644, sha256_file(p.source)) for p in selection.files)

    def _build_key(self, target: Target, lock: LockFile | None, source_sha: str, selection: Selection) -> str:
        inputs = {
            "layout": LAYOUT_VERSION,
            "relay": __version__,
            "kind": target.kind,
            "runtime": self.project.runtime,
            "architecture": target.architecture,
            "lock": lock.sha256 if lock else None,
            "source": source_sha,
            # where the selected files land in the zip (`source` vs `packages` lays the same files out differently)
            "archive": hashlib.sha256("\n".join(p.archive for p in selection.files).encode()).hexdigest(),
            "epoch": self.epoch,
        }
        return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()

    def _manifest(self, prepared: Prepared, stats: BundleStats, layers: list[BundleResult]) -> Manifest:
        target, lock, selection = prepared.target, prepared.lock, prepared.selection
        return Manifest(
            app=self.project.name,
            name=target.name,
            kind=target.kind,
            runtime=self.project.runtime,
            architecture=target.architecture,
            handler=target.function.handler if target.function else None,
            sha256=stats.sha256,
            code_sha256=stats.code_sha256,
            content_digest=stats.content_digest,
            zipped_size=stats.zipped_size,
            unzipped_size=stats.unzipped_size,
            files=stats.files,
            layers=tuple(LayerRef(r.manifest.name, r.manifest.sha256) for r in layers),
            lock=LockInfo(self._rel(lock.path), lock.sha256, lock.packages) if lock else None,
            source_sha256=prepared.source_sha256,
            source_paths=prepared.source_paths,
            source_root=selection.root if target.kind == "function" else None,
            source_packages=selection.packages,
            git=self.git.info_for(p.path for p in selection.files),
            build_key=prepared.key,
            relay_version=__version__,
            zlib_version=zlib.ZLIB_RUNTIME_VERSION,
            source_date_epoch=self.epoch,
        )

    def _import_check(self, target: Target, bundle: Zipped, layers: list[Zipped],
                      preload: list[str] | None) -> ImportCheck | None:
        fn = target.function
        if fn is None:
            return None
        if not self.options.import_check:
            return ImportCheck("skipped", "--no-import-check")
        # How this machine checks it (imported, and under which Python, or static) is part of the key:
        # a verdict reached statically is not reused once the runtime's Python is installed.
        plan = plan_check(self.project.runtime, fn.architecture)
        inputs = verdict_inputs(bundle, [layer.digest for layer in layers], runtime=self.project.runtime,
                                architecture=fn.architecture, handler=fn.handler, environment=fn.environment,
                                plan=plan.key())

        def verdict() -> ImportCheck:
            if self.options.use_cache and (known := self.verdicts.get(inputs)) is not None:
                return ImportCheck(*known, source=Source.CACHE)
            with step("import-check", target):
                check = check_handler(
                    function=fn.name, handler=fn.handler, runtime=self.project.runtime,
                    architecture=fn.architecture, memory=fn.memory, bundle=bundle,
                    layers=layers, environment=fn.environment,
                    trees=self.trees, warm=self.warm, plan=plan, origin=Origin(self.project.root, fn.requirements),
                    preload=preload,
                )
            self.verdicts.put(inputs, check.status, check.note)
            if check.status != "imported":
                self.reporter.note(f"{target.label}: import check {check.status}: {check.note}")
            return check

        # Functions of this build with the same inputs wait for the first one's verdict (or its failure).
        check, first = self._checked.run(Verdicts.key(inputs), verdict)
        return check if first else attrs.evolve(check, source=Source.SHARED)

    def _rel(self, path: Path) -> str:
        return Path(os.path.relpath(path, self.project.root)).as_posix()


def _mode(entry: ZipEntry) -> int:
    return EXEC_MODE if entry.executable else FILE_MODE


def _content_digest(entries: list[ZipEntry], known: dict[str, str]) -> tuple[str, dict[str, str]]:
    """`BundleStats.content_digest` of what zipping `entries` gives, and each file's sha256 by archive path.

    `known`: sha256 by file path (what the installer wrote); the other files are hashed on a few threads.
    The zip's own digest is compared with it (`_install_and_zip`)."""
    shas = {e.path: sha for e in entries if (sha := known.get(str(e.source))) is not None}
    unknown = [e for e in entries if e.path not in shas]  # only these are read (on threads: there may be many)
    if unknown:
        with ThreadPoolExecutor(max_workers=min(available_cores(), 8), thread_name_prefix="relay-hash") as pool:
            shas.update(zip((e.path for e in unknown), pool.map(lambda e: sha256_file(e.source), unknown), strict=True))
    return tree_digest((e.path, _mode(e), shas[e.path]) for e in entries), {e.path: shas[e.path] for e in entries}


def verdict_inputs(bundle: Zipped, layers: list[str], *, runtime: str, architecture: str, handler: str,
                   environment: dict[str, str], plan: str) -> dict:
    """What an import check's verdict depends on: a verdict is reused only when all of it is the same.

    The bundle's and its layers' content digests (in order; what their files are, whatever zlib made
    of them), the runtime, architecture and handler, the function's variables (init may read them;
    only their digest is kept), how this machine checks (`CheckPlan.key`) and the check's own code
    (`model_fingerprint`, with `CHECK_VERSION`).
    """
    variables = hashlib.sha256(json.dumps(sorted(environment.items())).encode()).hexdigest()
    return {"check": f"{CHECK_VERSION}:{model_fingerprint()}", "bundle": bundle.digest, "layers": list(layers),
            "runtime": runtime, "architecture": architecture, "handler": handler, "variables": variables,
            "plan": plan}


def stats_of_zip(zip_path: Path, manifest: Manifest) -> BundleStats:
    """Stats of a bundle relay built elsewhere (the remote cache), its sizes read from the zip."""
    import zipfile

    with zipfile.ZipFile(zip_path) as archive:
        sizes = [(info.filename, info.file_size) for info in archive.infolist()]
    return BundleStats(
        sha256=manifest.sha256, code_sha256=manifest.code_sha256, content_digest=manifest.content_digest,
        zipped_size=zip_path.stat().st_size, unzipped_size=sum(size for _, size in sizes), files=len(sizes),
        contributors=contributors(sizes),
    )
