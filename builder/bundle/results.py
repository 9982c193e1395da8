"""What `relay build` did: one record per bundle, and the build's result; their JSON is `relay build --json`."""

from __future__ import annotations

from pathlib import Path

import attrs

from builder.bundle.importcheck import ImportCheck
from builder.bundle.wheels import Fetched
from builder.bundle.zipwriter import BundleStats
from builder.frozen import to_tuple
from builder.models import Manifest


@attrs.frozen
class BundleResult:
    manifest: Manifest
    zip_path: Path
    manifest_path: Path
    status: str  # "built" | "cached" | "remote" | "unchanged"
    seconds: float
    stats: BundleStats
    import_check: ImportCheck | None = None

    def to_json(self) -> dict:
        return {
            "kind": self.manifest.kind,
            "name": self.manifest.name,
            "architecture": self.manifest.architecture,
            "status": self.status,
            "zip": str(self.zip_path),
            "manifest": str(self.manifest_path),
            "sha256": self.manifest.sha256,
            "code_sha256": self.manifest.code_sha256,
            "size": {"zipped": self.manifest.zipped_size, "unzipped": self.manifest.unzipped_size},
            "seconds": round(self.seconds, 3),
            "import_check": self.import_check.to_json() if self.import_check else None,
        }


@attrs.frozen
class Download:
    """The wheels a build downloaded for one platform, and how (from the index directly, or with pip)."""

    runtime: str
    architecture: str
    wheels: int
    fetched: Fetched

    def to_json(self) -> dict:
        return {"runtime": self.runtime, "architecture": self.architecture, "wheels": self.wheels,
                **self.fetched.to_json()}


@attrs.frozen
class BuildResult:
    app: str
    dist: Path
    bundles: tuple[BundleResult, ...] = attrs.field(converter=to_tuple)
    seconds: float = 0.0  # wall time
    cpu_seconds: float = 0.0  # relay's and its children's (pip, the check's interpreters) user + system time
    jobs: int = 1  # bundles worked on at once
    downloads: tuple[Download, ...] = attrs.field(default=(), converter=to_tuple)  # wheels not in the cache yet

    @property
    def rebuilt(self) -> tuple[BundleResult, ...]:
        return tuple(b for b in self.bundles if b.status != "unchanged")

    def to_json(self) -> dict:
        return {
            "app": self.app,
            "dist": str(self.dist),
            "seconds": round(self.seconds, 3),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "jobs": self.jobs,
            "nothing_changed": not self.rebuilt,
            "downloads": [d.to_json() for d in self.downloads],
            "bundles": [b.to_json() for b in self.bundles],
        }
