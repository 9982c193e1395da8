"""Wheels for the Lambda platform: a content-addressed wheel cache, and the index or pip to fetch them.

Fetching a locked wheel needs no resolver: every requirement is `name==version` with its sha256
pins, so the index's file list for the name, kept to the pinned hashes and the wheels Lambda
loads, names the file, and the choice among several is pip's (`index.choose`: the best-ranked
tag of `pip download --platform ...`, then build tag). relay reads that page and downloads the
file itself (`index.py`, threads, no pip process), hashing as it streams; bytes that match no pin
are refused, as pip refuses them. It reads pip's own configuration to do so (`pipconfig.py`: the
files and `PIP_*` variables pip reads, `[global]` and `[download]`): every index (`index-url`,
`extra-index-url`, `no-index`, http(s) or a `file://` tree) and `find-links` location (folder or page)
is a source, the candidates are their union kept to the pins, and `cert`, `trusted-host`, `proxy`,
`timeout` and `retries` are pip's. pip does the download as before
(`pip download --require-hashes --platform ...`, once per target platform for everything left,
shared out to `jobs` processes) when that configuration asks for something relay does not do
(`index.route`: a `client-cert`, an unknown setting, a constraint file with options), for a
requirement a constraint excludes or that no source serves plainly (HTTP error, a page it cannot
read, no pinned loadable file, a candidate listed without a hash).
Either way each wheel is filed under the sha256 the lock pins (`<cache>/wheels/<sha256>/<file>`),
and which pinned file was chosen for a platform is remembered (`<cache>/wheels/chosen/...`), so
the same lock gives the same wheel on every machine whatever else the cache holds, and a warm
machine needs no index.

Unpacking them into a bundle is `install.py`'s.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, as_completed
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from builder.bundle import platform, subproc
from builder.bundle.digest import sha256_file
from builder.errors import BuildFailed
from builder.fsutil import atomic_copy, atomic_write_text
from builder.lock.lockfile import LockedRequirement, LockFile

if TYPE_CHECKING:
    from builder.bundle import index
    from builder.progress import Reporter

_HASH_MISMATCH = re.compile(r"DO NOT MATCH THE HASHES.*?\n\s+(\S+==\S+)", re.S)
_GOT = re.compile(r"Got\s+([0-9a-f]{64})")


class WheelCache:
    def __init__(self, cache_root: Path) -> None:
        self.root = cache_root / "wheels"

    def chosen(self, req: LockedRequirement, runtime: str, arch: str) -> Path | None:
        """The wheel pip chose for `req` on this platform, when it is in the cache."""
        record = self._choice_path(req, runtime, arch)
        if not record.is_file():
            return None
        choice = json.loads(record.read_text(encoding="utf-8"))
        path = self.root / choice["sha256"] / choice["file"]
        return path if path.is_file() else None

    def remember(self, req: LockedRequirement, runtime: str, arch: str, wheel: Path, *,
                 digest: str | None = None, move: bool = False) -> Path:
        """File `wheel` under its pin and record it as the choice for the platform.

        `digest`: its sha256, when the caller hashed it as it was written; `move`: the file is a
        scratch file on the cache's file system (`incoming`), renamed into place instead of copied.
        """
        digest = digest or sha256_file(wheel)
        if f"sha256:{digest}" not in req.hashes:
            raise BuildFailed("download", f"{req.name}=={req.version}: pip returned {wheel.name}, which the lock does not pin")
        stored = self.root / digest / wheel.name
        if not stored.is_file():
            stored.parent.mkdir(parents=True, exist_ok=True)
            if move:
                os.replace(wheel, stored)
            else:
                atomic_copy(wheel, stored)
        record = self._choice_path(req, runtime, arch)
        record.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(record, json.dumps({"sha256": digest, "file": wheel.name}))
        return stored

    def incoming(self) -> Path:
        """A fresh scratch folder on the cache's file system for downloads in progress (the caller removes it)."""
        base = self.root / "incoming"
        base.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="dl-", dir=base))

    def _choice_path(self, req: LockedRequirement, runtime: str, arch: str) -> Path:
        pins = hashlib.sha256("\n".join(sorted(req.hashes)).encode()).hexdigest()[:32]
        return self.root / "chosen" / f"{runtime}-{arch}" / f"{req.name}-{req.version}-{pins}.json"


def missing(locks: Iterable[LockFile], cache: WheelCache, runtime: str, arch: str) -> list[LockedRequirement]:
    """Requirements of `locks` with no chosen wheel in the cache for this platform (deduplicated)."""
    seen: dict[tuple[str, str, tuple[str, ...]], LockedRequirement] = {}
    for lock in locks:
        for req in lock.requirements:
            if cache.chosen(req, runtime, arch) is None:
                seen.setdefault((req.name, req.version, req.hashes), req)
    return list(seen.values())


@attrs.frozen
class Fetched:
    """How a fetch went: wheels downloaded straight from the index, and wheels pip downloaded (and why)."""

    source: str  # "from <index, password redacted>" or "with pip (<why>)"
    direct: int = 0
    pip: int = 0
    pip_reason: str = ""

    def to_json(self) -> dict:
        return {"source": self.source, "direct": self.direct, "pip": self.pip, "pip_reason": self.pip_reason}


DIRECT_THREADS = 8  # downloads are I/O bound


def source() -> str:
    """Where a fetch would take wheels from now, safe to print (for the download step's progress line)."""
    from builder.bundle import index  # urllib, ssl and pip's configuration: only when something is downloaded

    return index.route().shown


Arrived = Callable[[LockedRequirement, Path], None]  # a wheel filed in the cache, as soon as it is


def fetch(reqs: list[LockedRequirement], cache: WheelCache, *, runtime: str, arch: str, offline: bool,
          jobs: int = 1, reporter: Reporter | None = None, arrived: Arrived | None = None) -> Fetched:
    """Download every requirement in `reqs` for the platform, hashes enforced: from the index directly, else pip.

    `arrived` is told of each wheel once it is filed, while the others still download.
    """
    if not reqs:
        return Fetched(source="")
    if offline:
        names = ", ".join(f"{r.name}=={r.version}" for r in reqs)
        raise BuildFailed("download", f"not in the wheel cache for {runtime}/{arch}: {names}",
                          hint="Run once without --offline to fill the wheel cache.")
    from builder.bundle import index

    way = index.route()
    left, why = reqs, way.reason
    if way.settings is not None:
        try:
            client = way.client()
        except index.Unserved as exc:
            why = str(exc)
        else:
            left, why = _fetch_direct(reqs, cache, client, runtime=runtime, arch=arch, arrived=arrived)
        if left and reporter is not None:
            reporter.note(f"pip fetches {len(left)} of {len(reqs)} wheels for {runtime}/{arch}: {why}")
    if left:
        _fetch_with_pip(left, cache, runtime=runtime, arch=arch, jobs=jobs, arrived=arrived)
    return Fetched(source=way.shown, direct=len(reqs) - len(left), pip=len(left), pip_reason=why if left else "")


def _fetch_direct(reqs: list[LockedRequirement], cache: WheelCache, client: index.Client, *, runtime: str,
                  arch: str, arrived: Arrived | None) -> tuple[list[LockedRequirement], str]:
    """Each requirement's wheel from the index into the cache; the ones it could not serve, and the first reason."""
    from concurrent.futures import ThreadPoolExecutor

    from builder.bundle import index

    scratch = cache.incoming()
    try:
        def one(req: LockedRequirement) -> str | None:
            folder = Path(tempfile.mkdtemp(dir=scratch))  # one per requirement: two pins may share a file name
            try:
                wheel, digest = index.fetch_one(client, req, runtime, arch, folder)
            except index.Unserved as exc:
                return str(exc)
            stored = cache.remember(req, runtime, arch, wheel, digest=digest, move=True)
            if arrived is not None:
                arrived(req, stored)
            return None

        with ThreadPoolExecutor(max_workers=min(DIRECT_THREADS, len(reqs)), thread_name_prefix="relay-fetch") as pool:
            futures = [pool.submit(one, req) for req in reqs]
            outcomes = []
            failure: BaseException | None = None
            for future in futures:
                try:
                    outcomes.append(future.result())
                except BaseException as exc:  # the first error is raised once every download has ended
                    outcomes.append("failed")
                    failure = failure or exc
        if failure is not None:
            raise failure
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    left = [req for req, reason in zip(reqs, outcomes, strict=True) if reason is not None]
    reasons = [reason for reason in outcomes if reason is not None]
    return left, reasons[0] if reasons else ""


def _fetch_with_pip(reqs: list[LockedRequirement], cache: WheelCache, *, runtime: str, arch: str, jobs: int,
                    arrived: Arrived | None = None) -> None:
    """`reqs` downloaded by pip (`jobs` processes at once), hashes enforced."""
    # pip spends most of a cold download on one thread (its start, reading each index page): the
    # requirements are shared out to `jobs` pip processes at once.
    parts = [part for batch in _batches(reqs) for part in _shares(batch, jobs)]
    if len(parts) == 1:
        _download(parts[0], cache, runtime=runtime, arch=arch, arrived=arrived)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="relay-pip") as pool:
        for done in [pool.submit(_download, part, cache, runtime=runtime, arch=arch, arrived=arrived) for part in parts]:
            done.result()


def _shares(batch: list[LockedRequirement], jobs: int) -> list[list[LockedRequirement]]:
    """`batch` dealt out to at most `jobs` parts, none smaller than a few requirements (pip takes ~0.5 s to start)."""
    count = max(1, min(jobs, len(batch) // 4))
    return [batch[i::count] for i in range(count)]


def _download(batch: list[LockedRequirement], cache: WheelCache, *, runtime: str, arch: str,
              arrived: Arrived | None = None) -> None:
    with tempfile.TemporaryDirectory(prefix="relay-dl-") as tmp:
        listing = Path(tmp) / "requirements.txt"
        listing.write_text("".join(_requirement_line(r) for r in batch), encoding="utf-8")
        dest = Path(tmp) / "wheels"
        _run_pip(["download", "--dest", str(dest), "--no-deps", "--require-hashes",
                  *platform.pip_target_args(runtime, arch), "-r", str(listing)], step="download")
        from packaging.utils import canonicalize_name, parse_wheel_filename

        by_pin = {(r.name, r.version): r for r in batch}
        for wheel in sorted(dest.glob("*.whl")):
            name, version, _, _ = parse_wheel_filename(wheel.name)
            req = by_pin.get((canonicalize_name(name), str(version)))
            if req is None:
                req = _by_name(batch, canonicalize_name(name))
            stored = cache.remember(req, runtime, arch, wheel)
            if arrived is not None:
                arrived(req, stored)


class Arrivals:
    """The wheels a build downloads, each as soon as it is filed in the cache (`fetch`'s `arrived`).

    A bundle installs its lock's wheels in the order they arrive (`wheels`), so unpacking the first
    overlaps downloading the last. The build says which it will download (`expect`) before it starts, and
    `settle`s them when the download ends: any not filed by then fails whoever waits for it.
    """

    def __init__(self, cache: WheelCache, runtime: str) -> None:
        self.cache, self.runtime = cache, runtime
        self._coming: dict[tuple[str, str, str, tuple[str, ...]], Future[Path]] = {}
        self._guard = threading.Lock()

    def expect(self, arch: str, reqs: Iterable[LockedRequirement]) -> None:
        with self._guard:
            for req in reqs:
                self._coming.setdefault(_pin(arch, req), Future())

    def arrived(self, arch: str, req: LockedRequirement, wheel: Path) -> None:
        with self._guard:
            future = self._coming.get(_pin(arch, req))
            if future is not None and not future.done():
                future.set_result(wheel)

    def settle(self, failure: BaseException | None = None) -> None:
        """The download ended (with `failure`): what did not arrive never will."""
        with self._guard:
            for (arch, name, version, _), future in self._coming.items():
                if not future.done():
                    future.set_exception(failure or self._no_wheel(name, version, arch))

    def wheels(self, lock: LockFile, arch: str) -> Iterator[tuple[LockedRequirement, Path]]:
        """Each requirement of `lock` with its wheel: those in the cache first, then each download as it arrives."""
        waiting: dict[Future[Path], LockedRequirement] = {}
        for req in lock.requirements:
            with self._guard:
                future = self._coming.get(_pin(arch, req))
            if future is not None:
                waiting[future] = req
                continue
            path = self.cache.chosen(req, self.runtime, arch)
            if path is None:
                raise self._no_wheel(req.name, req.version, arch)
            yield req, path
        for future in as_completed(waiting):
            yield waiting[future], future.result()

    def _no_wheel(self, name: str, version: str, arch: str) -> BuildFailed:
        return BuildFailed("download", f"pip gave no usable wheel for {name}=={version} ({self.runtime}/{arch})")


def _pin(arch: str, req: LockedRequirement) -> tuple[str, str, str, tuple[str, ...]]:
    return arch, req.name, req.version, req.hashes


def _batches(reqs: list[LockedRequirement]) -> list[list[LockedRequirement]]:
    """pip takes one pin per name per call: locks pinning one name differently go in separate calls."""
    batches: list[list[LockedRequirement]] = []
    for req in reqs:
        for batch in batches:
            if all(other.name != req.name for other in batch):
                batch.append(req)
                break
        else:
            batches.append([req])
    return batches


def _by_name(batch: list[LockedRequirement], name: str) -> LockedRequirement:
    for req in batch:
        if req.name == name:
            return req
    raise BuildFailed("download", f"pip returned a wheel for {name}, which was not asked for")


def _run_pip(args: list[str], *, step: str) -> None:
    done = subproc.run([sys.executable, "-m", "pip", *args], step=step, env=_pip_env(), check=False)
    if done.ok:
        return
    mismatch = _HASH_MISMATCH.search(done.stderr)
    if mismatch:
        got = _GOT.search(done.stderr)
        raise BuildFailed(
            step,
            f"hash mismatch for {mismatch.group(1)}: the file pip fetched has sha256 "
            f"{got.group(1) if got else '?'}, which the lock does not pin",
            hint="The lock or the package source changed: check who edited the lock, "
                 "then `relay lock --upgrade` if the change is wanted.",
        )
    raise BuildFailed(step, subproc.failure_reason(done))


def _requirement_line(req: LockedRequirement) -> str:
    hashes = " ".join(f"--hash={h}" for h in req.hashes)
    return f"{req.name}=={req.version} {hashes}\n"


def _pip_env() -> dict[str, str]:
    # Bytecode and version checks vary by host and time.
    return {"PYTHONDONTWRITEBYTECODE": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
