"""Frozen records that cross module boundaries, and their JSON form.

The JSON form of each record is what `schemas/*.schema.json` describe; tests
validate every serialised record against its schema.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from builder.frozen import to_tuple

MANIFEST_SCHEMA = "relay.manifest/v1"


@attrs.frozen
class LayerRef:
    name: str
    sha256: str

    def to_json(self) -> dict:
        return {"name": self.name, "sha256": self.sha256}


@attrs.frozen
class LockInfo:
    path: str  # relative to the project root, "/" separated
    sha256: str
    packages: tuple[str, ...] = attrs.field(converter=to_tuple)  # "name==version", sorted

    def to_json(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "packages": list(self.packages)}


@attrs.frozen
class GitInfo:
    commit: str
    dirty: bool  # some shipped file is untracked, ignored, or differs from `commit`

    def to_json(self) -> dict:
        return {"commit": self.commit, "dirty": self.dirty}

    @classmethod
    def combined(cls, infos: Iterable[GitInfo | None]) -> GitInfo | None:
        """One commit for a set of bundles (a release): dirty when any bundle is; None unless all name one commit."""
        found = list(infos)
        if not found or any(info is None for info in found):
            return None
        known = [info for info in found if info is not None]
        commits = {info.commit for info in known}
        if len(commits) != 1:
            return None
        return cls(commit=commits.pop(), dirty=any(info.dirty for info in known))


@attrs.frozen
class Manifest:
    """What one bundle (function or layer zip) is, and what it was built from."""

    app: str
    name: str
    kind: str  # "function" | "layer"
    runtime: str
    architecture: str
    sha256: str
    code_sha256: str
    content_digest: str
    zipped_size: int
    unzipped_size: int
    files: int
    source_sha256: str  # of exactly the files shipped from the project (not its installed requirements)
    source_paths: tuple[str, ...] = attrs.field(converter=to_tuple)  # the folders they come from
    source_root: str | None = None  # a function's source root, relative to the project root
    source_packages: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)  # package folders shipped by name
    build_key: str = ""
    relay_version: str = ""
    zlib_version: str = ""
    handler: str | None = None
    layers: tuple[LayerRef, ...] = attrs.field(default=(), converter=to_tuple)
    lock: LockInfo | None = None
    git: GitInfo | None = None
    version: str | None = None
    source_date_epoch: int = 315532800  # 1980-01-01T00:00:00Z, the zip format's first second

    @property
    def bundle_name(self) -> str:
        """File stem in dist/: `orders`, or `layer-common-x86_64`."""
        return bundle_name(self.kind, self.name, self.architecture)

    def to_json(self) -> dict:
        return {
            "schema": MANIFEST_SCHEMA,
            "app": self.app,
            "name": self.name,
            "kind": self.kind,
            "version": self.version,
            "runtime": self.runtime,
            "architecture": self.architecture,
            "handler": self.handler,
            "sha256": self.sha256,
            "code_sha256": self.code_sha256,
            "content_digest": self.content_digest,
            "size": {"zipped": self.zipped_size, "unzipped": self.unzipped_size},
            "files": self.files,
            "layers": [ref.to_json() for ref in self.layers],
            "lock": self.lock.to_json() if self.lock else None,
            "source": {"sha256": self.source_sha256, "paths": list(self.source_paths), "root": self.source_root,
                       "packages": list(self.source_packages)},
            "git": self.git.to_json() if self.git else None,
            "build_key": self.build_key,
            "builder": {
                "name": "relay",
                "version": self.relay_version,
                "zlib": self.zlib_version,
                "source_date_epoch": self.source_date_epoch,
            },
        }

    @classmethod
    def from_json(cls, doc: dict, *, what: str = "manifest") -> Manifest:
        """The manifest `doc`; VerificationFailed (naming `what`) when it is not one or names an unsafe name."""
        from builder.errors import VerificationFailed

        try:
            manifest = cls._from_json(doc)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise VerificationFailed(f"{what}: not a bundle manifest ({type(exc).__name__}: {exc})",
                                     hint="Run `relay build` again, or check who wrote this document.") from None
        manifest.check_names(what)
        return manifest

    def check_names(self, what: str) -> None:
        """Every name that becomes a file name or a registry key is safe (builder.names)."""
        from builder.names import check_digest, check_name

        check_name(self.app, f"{what}: app")
        check_name(self.name, f"{what}: name")
        check_name(self.architecture, f"{what}: architecture")
        check_digest(self.sha256, f"{what}: sha256")
        for index, ref in enumerate(self.layers):
            check_name(ref.name, f"{what}: layers[{index}].name")
            check_digest(ref.sha256, f"{what}: layers[{index}].sha256")

    @classmethod
    def _from_json(cls, doc: dict) -> Manifest:
        lock = doc.get("lock")
        git = doc.get("git")
        return cls(
            app=doc["app"],
            name=doc["name"],
            kind=doc["kind"],
            version=doc.get("version"),
            runtime=doc["runtime"],
            architecture=doc["architecture"],
            handler=doc.get("handler"),
            sha256=doc["sha256"],
            code_sha256=doc["code_sha256"],
            content_digest=doc["content_digest"],
            zipped_size=doc["size"]["zipped"],
            unzipped_size=doc["size"]["unzipped"],
            files=doc["files"],
            layers=tuple(LayerRef(**ref) for ref in doc.get("layers", ())),
            lock=LockInfo(path=lock["path"], sha256=lock["sha256"], packages=lock["packages"]) if lock else None,
            source_sha256=doc["source"]["sha256"],
            source_paths=doc["source"]["paths"],
            source_root=doc["source"].get("root"),
            source_packages=doc["source"].get("packages", ()),
            git=GitInfo(**git) if git else None,
            build_key=doc["build_key"],
            relay_version=doc["builder"]["version"],
            zlib_version=doc["builder"]["zlib"],
            source_date_epoch=doc["builder"].get("source_date_epoch", 315532800),
        )


def bundle_name(kind: str, name: str, architecture: str) -> str:
    if kind == "layer":
        return f"layer-{name}-{architecture}"
    return name
