"""The local build cache: bundles keyed by the hash of every build input.

`<cache>/builds/<key>/bundle.zip` + `stats.json`. An entry is written to a
temp folder and renamed into place, so a crashed build never leaves a
half-written entry. Import checks that passed are remembered per key too.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import attrs

from builder.bundle.zipwriter import BundleStats


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
        folder = self.root / key
        if not folder.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=self.root))
            shutil.copyfile(zip_path, staging / "bundle.zip")
            (staging / "stats.json").write_text(json.dumps(_stats_to_json(stats), sort_keys=True), encoding="utf-8")
            try:
                os.rename(staging, folder)
            except OSError:  # another build stored the same key first: same bytes
                shutil.rmtree(staging, ignore_errors=True)
        return CachedBundle(folder / "bundle.zip", stats)

    def import_check(self, check_key: str) -> tuple[str, str] | None:
        """(status, note) of an import check that passed before for the same inputs."""
        path = self.root / "import-checks" / check_key
        if not path.is_file():
            return None
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            return doc["status"], doc["note"]
        except (ValueError, KeyError, TypeError):  # written by an older relay: check again
            return None

    def remember_import_check(self, check_key: str, status: str, note: str) -> None:
        folder = self.root / "import-checks"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / check_key).write_text(json.dumps({"status": status, "note": note}), encoding="utf-8")


def _stats_to_json(stats: BundleStats) -> dict:
    doc = attrs.asdict(stats)
    doc["contributors"] = [list(item) for item in stats.contributors]
    return doc


def _stats_from_json(doc: dict) -> BundleStats:
    doc = dict(doc)
    doc["contributors"] = tuple(tuple(item) for item in doc.get("contributors", ()))
    return BundleStats(**doc)
