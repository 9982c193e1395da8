"""in-toto Statement v1 with a SLSA provenance v1 predicate, for bundles and releases.

The statement's subjects are the bundles (zip name + sha256). The predicate
says how and from what they were built: build type, external parameters (app,
version, names), internal parameters (runtime, architecture), resolved
dependencies (git commit, lock and source tree digests, layers), the builder
and its version, and as byproducts the digests of the manifest (or release
document) and SBOM stored beside the envelope: that binds the signature to
their exact bytes. Nothing in it depends on time or on the machine, so the
same build always gives the same payload.
"""

from __future__ import annotations

import json

import attrs

from builder.dist import zip_name
from builder.errors import VerificationFailed
from builder.models import Manifest
from builder.registry.release import Release

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://lambda-relay.dev/build/v1"
RELEASE_BUILD_TYPE = "https://lambda-relay.dev/release/v1"
BUILDER_ID = "https://lambda-relay.dev/relay"
MANIFEST_NAME = "manifest.json"
SBOM_NAME = "sbom.cdx.json"
RELEASE_NAME = "release.json"
SBOM_MEDIA_TYPE = "application/vnd.cyclonedx+json"
MANIFEST_DEPENDENCY = "manifest:"
SBOM_DEPENDENCY = "sbom:"


def encode(statement: dict) -> bytes:
    """Compact canonical JSON: the DSSE payload."""
    return json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def bundle_statement(manifest: Manifest, *, manifest_sha256: str, sbom_sha256: str) -> dict:
    external: dict = {"app": manifest.app, "kind": manifest.kind, "name": manifest.name}
    if manifest.version is not None:
        external["version"] = manifest.version
    internal: dict = {"runtime": manifest.runtime, "architecture": manifest.architecture, "build_key": manifest.build_key}
    if manifest.handler:
        internal["handler"] = manifest.handler
    return _statement(
        subjects={zip_name(manifest.bundle_name): manifest.sha256},
        build_type=BUILD_TYPE,
        external=external,
        internal=internal,
        dependencies=_bundle_dependencies(manifest),
        builder_version={"relay": manifest.relay_version, "zlib": manifest.zlib_version},
        byproducts=[
            {"name": MANIFEST_NAME, "digest": {"sha256": manifest_sha256}, "mediaType": "application/json"},
            {"name": SBOM_NAME, "digest": {"sha256": sbom_sha256}, "mediaType": SBOM_MEDIA_TYPE},
        ],
    )


@attrs.frozen
class BundleDocs:
    """A bundle's stored manifest and SBOM, by digest: what a release statement vouches for."""

    bundle: str  # the bundle's name, e.g. "orders" or "layer-common-x86_64"
    manifest: str  # the manifest's key relative to the registry prefix
    manifest_sha256: str
    sbom_sha256: str


def release_statement(release: Release, *, release_sha256: str, relay_version: str,
                      documents: tuple[BundleDocs, ...] = ()) -> dict:
    """The statement of a whole release; `documents` makes it vouch for every bundle's manifest and SBOM.

    With them a release stays verifiable when its unchanged layers' own
    envelopes were signed by a key that is no longer trusted (key rotation).
    """
    dependencies = [_git_dependency(release.git.commit, release.git.dirty)] if release.git else []
    for doc in sorted(documents, key=lambda d: d.bundle):
        dependencies.append({"name": f"{MANIFEST_DEPENDENCY}{doc.bundle}", "uri": doc.manifest,
                             "digest": {"sha256": doc.manifest_sha256}})
        dependencies.append({"name": f"{SBOM_DEPENDENCY}{doc.bundle}", "digest": {"sha256": doc.sbom_sha256}})
    return _statement(
        subjects=release.subjects(),
        build_type=RELEASE_BUILD_TYPE,
        external={
            "app": release.app,
            "version": release.version,
            "functions": [f.name for f in release.functions],
            "layers": [lay.bundle for lay in release.layers],
        },
        internal={"runtime": release.runtime},
        dependencies=dependencies,
        builder_version={"relay": relay_version},
        byproducts=[{"name": RELEASE_NAME, "digest": {"sha256": release_sha256}, "mediaType": "application/json"}],
    )


def _statement(*, subjects: dict[str, str], build_type: str, external: dict, internal: dict,
               dependencies: list[dict], builder_version: dict, byproducts: list[dict]) -> dict:
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": sha}} for name, sha in sorted(subjects.items())],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": build_type,
                "externalParameters": external,
                "internalParameters": internal,
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID, "version": builder_version},
                "byproducts": byproducts,
            },
        },
    }


def _bundle_dependencies(manifest: Manifest) -> list[dict]:
    found = []
    if manifest.git:
        found.append(_git_dependency(manifest.git.commit, manifest.git.dirty))
    found.append({"name": "source", "digest": {"sha256": manifest.source_sha256},
                  "annotations": {"paths": list(manifest.source_paths)}})
    if manifest.lock:
        found.append({"name": "lock", "uri": f"file:{manifest.lock.path}", "digest": {"sha256": manifest.lock.sha256}})
    for ref in manifest.layers:
        found.append({"name": f"layer:{ref.name}", "digest": {"sha256": ref.sha256}})
    return found


def _git_dependency(commit: str, dirty: bool) -> dict:
    return {"name": "git", "digest": {"gitCommit": commit}, "annotations": {"dirty": dirty}}


@attrs.frozen
class StatementView:
    """The parts of a signed statement that verification compares with what is stored."""

    doc: dict

    @classmethod
    def parse(cls, payload: bytes, *, what: str) -> StatementView:
        try:
            doc = json.loads(payload)
            ok = (
                isinstance(doc, dict)
                and doc.get("_type") == STATEMENT_TYPE
                and doc.get("predicateType") == PREDICATE_TYPE
                and isinstance(doc["predicate"]["buildDefinition"]["externalParameters"], dict)
                and isinstance(doc["subject"], list)
            )
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            raise VerificationFailed(f"{what}: payload is not an in-toto v1 statement with SLSA provenance v1")
        return cls(doc)

    @property
    def subjects(self) -> dict[str, str]:
        try:
            return {s["name"]: s["digest"]["sha256"] for s in self.doc["subject"]}
        except (KeyError, TypeError):
            return {}

    @property
    def build_type(self) -> str:
        return self.doc["predicate"]["buildDefinition"].get("buildType", "")

    @property
    def external(self) -> dict:
        return self.doc["predicate"]["buildDefinition"]["externalParameters"]

    @property
    def internal(self) -> dict:
        return self.doc["predicate"]["buildDefinition"].get("internalParameters") or {}

    def dependency(self, name: str) -> str | None:
        """The sha256 the statement gives for resolved dependency `name` (None when absent or malformed)."""
        try:
            for item in self.doc["predicate"]["buildDefinition"]["resolvedDependencies"]:
                if item.get("name") == name:
                    return item["digest"]["sha256"]
        except (KeyError, TypeError, AttributeError):
            pass
        return None

    def byproduct(self, name: str) -> str | None:
        """The sha256 the statement gives for byproduct `name` (None when absent or malformed)."""
        try:
            for item in self.doc["predicate"]["runDetails"]["byproducts"]:
                if item.get("name") == name:
                    return item["digest"]["sha256"]
        except (KeyError, TypeError, AttributeError):
            pass
        return None
