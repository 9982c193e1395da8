"""The local build cache: bundles keyed by the hash of every build input.

`<cache>/builds/<key>/bundle.zip` + `stats.json`. An entry is written to a
temp folder and renamed into place, so a crashed build never leaves a
half-written entry. Import checks that passed are remembered by their inputs (`Verdicts`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import attrs

from builder.bundle.zipwriter import BundleStats
from builder.fsutil import atomic_write_text


@attrs.frozen
class CachedBundle:
    zip_path: Path
    stats: BundleStats


class BuildCache:
    def __init__(self, root: Path) -> None:
        self.root = root / "builds"

    def get(self, key: str) -> CachedBundle | None:
        folder = self.root / key
        zip_path, stats_path = folder / "bundle.zip", folder / "stats.json"
        if not (zip_path.is_file() and stats_path.is_file()):
            return None
        stats = _stats_from_json(json.loads(stats_path.read_text(encoding="utf-8")))
        if zip_path.stat().st_size != stats.zipped_size:
            return None
        return CachedBundle(zip_path, stats)

    def put(self, key: str, zip_path: Path, stats: BundleStats) -> CachedBundle:
        """Store `zip_path` (a temp file of the caller's: it may be moved) under `key`."""
        folder = self.root / key
        if not folder.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=self.root))
            try:  # the caller's temp file, moved when on the same file system (a layer's zip is tens of MiB)
                os.rename(zip_path, staging / "bundle.zip")
            except OSError:
                shutil.copyfile(zip_path, staging / "bundle.zip")
            (staging / "stats.json").write_text(json.dumps(_stats_to_json(stats), sort_keys=True), encoding="utf-8")
            try:
                os.rename(staging, folder)
            except OSError:  # another build stored the same key first: same bytes
                shutil.rmtree(staging, ignore_errors=True)
        return CachedBundle(folder / "bundle.zip", stats)


class Verdicts:
    """Import-check verdicts that passed, kept by what they depend on: `<cache>/verdicts/<key>.json`.

    The key is the sha256 of the inputs (the bundle's digest, its layers' digests in order, runtime,
    architecture, handler, the function's variables and the check's own version, see `pipeline`). An
    entry repeats its inputs and a checksum over them and the verdict; one that does not hold exactly
    the inputs asked for, or whose checksum fails (edited, truncated, filed under another key), is not
    trusted: the check runs again and the entry is rewritten. Only passes are kept: a failing check
    fails the build, which runs it again next time.
    """

    def __init__(self, root: Path) -> None:
        self.root = root / "verdicts"

    @staticmethod
    def key(inputs: dict) -> str:
        return hashlib.sha256(_canonical(inputs)).hexdigest()

    def get(self, inputs: dict) -> tuple[str, str] | None:
        """(status, note) of a check that passed for exactly `inputs`, or None."""
        try:
            doc = json.loads((self.root / f"{self.key(inputs)}.json").read_text(encoding="utf-8"))
            status, note, checksum = doc["status"], doc["note"], doc["sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if doc.get("inputs") != inputs or checksum != _checksum(inputs, status, note):
            return None
        if status not in _PASSED or not isinstance(note, str):
            return None
        return status, note

    def put(self, inputs: dict, status: str, note: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        doc = {"inputs": inputs, "status": status, "note": note, "sha256": _checksum(inputs, status, note)}
        atomic_write_text(self.root / f"{self.key(inputs)}.json", json.dumps(doc, sort_keys=True))


# The verdicts an entry may hold (`importcheck.Method`, without "skipped").
_PASSED = ("imported", "static")


def _canonical(doc: object) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _checksum(inputs: dict, status: str, note: str) -> str:
    return hashlib.sha256(_canonical({"inputs": inputs, "status": status, "note": note})).hexdigest()


def _stats_to_json(stats: BundleStats) -> dict:
    doc = attrs.asdict(stats)
    doc["contributors"] = [list(item) for item in stats.contributors]
    return doc


def _stats_from_json(doc: dict) -> BundleStats:
    doc = dict(doc)
    doc["contributors"] = tuple(tuple(item) for item in doc.get("contributors", ()))
    return BundleStats(**doc)
