"""The release document: one app version pinning its set of function and layer bundles.

Each function keeps its own digest (unchanged functions keep theirs from
release to release); the release pins the set, so `shop@2.3.0` is promoted as
a unit. It holds no time and no signature, so the same build always gives the
same document; `schemas/release.schema.json` describes it.

Each function also records its deployable settings as relay.toml had them when
the release was published (`settings`: memory, timeout, environment, ...,
placeholders such as `{env}` left as written, and its `layers` as written: relay
layer bundles and third-party layer version ARNs in attach order). They are
part of the signed document, so `relay promote V` deploys V's settings whatever
the checkout says. A release published before relay recorded them has none
(`ReleaseFunction.settings is None`); promotion then takes them from relay.toml.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from builder.dist import zip_name
from builder.frozen import to_tuple
from builder.models import GitInfo, bundle_name
from builder.settings import FunctionSettings, from_recorded, recorded_json

RELEASE_SCHEMA = "relay.release/v1"


@attrs.frozen
class ReleaseFunction:
    name: str
    manifest: str  # key relative to the registry prefix
    sha256: str
    code_sha256: str
    content_digest: str
    architecture: str
    handler: str
    layers: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)  # layer bundle names, in order
    # The recorded settings (handler, runtime, architecture as above; layers empty: see layer_entries), or None
    # for a release published before relay recorded them.
    settings: FunctionSettings | None = None
    # relay layer bundle names and third-party layer version ARNs, in attach order (with settings only).
    layer_entries: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)

    @property
    def bundle(self) -> str:
        return self.name

    @property
    def settings_json(self) -> dict[str, Any] | None:
        """The recorded settings as the document holds them (None: not recorded)."""
        if self.settings is None:
            return None
        return {**recorded_json(self.settings), "layers": list(self.layer_entries)}

    def to_json(self) -> dict:
        doc: dict[str, Any] = {
            "manifest": self.manifest,
            "sha256": self.sha256,
            "code_sha256": self.code_sha256,
            "content_digest": self.content_digest,
            "architecture": self.architecture,
            "handler": self.handler,
            "layers": list(self.layers),
        }
        if self.settings is not None:
            doc["settings"] = self.settings_json
        return doc


@attrs.frozen
class ReleaseLayer:
    name: str
    architecture: str
    manifest: str
    sha256: str
    code_sha256: str
    content_digest: str

    @property
    def bundle(self) -> str:
        return bundle_name("layer", self.name, self.architecture)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "manifest": self.manifest,
            "sha256": self.sha256,
            "code_sha256": self.code_sha256,
            "content_digest": self.content_digest,
            "architecture": self.architecture,
        }


@attrs.frozen
class Release:
    app: str
    version: str
    runtime: str
    functions: tuple[ReleaseFunction, ...] = attrs.field(converter=lambda v: tuple(sorted(v, key=lambda f: f.name)))
    layers: tuple[ReleaseLayer, ...] = attrs.field(converter=lambda v: tuple(sorted(v, key=lambda lay: lay.bundle)))
    git: GitInfo | None = None

    def function(self, name: str) -> ReleaseFunction | None:
        return next((f for f in self.functions if f.name == name), None)

    def layer(self, bundle: str) -> ReleaseLayer | None:
        return next((lay for lay in self.layers if lay.bundle == bundle), None)

    def subjects(self) -> dict[str, str]:
        """`{zip file name: sha256}` of every bundle: the signed statement's subjects."""
        found = {zip_name(lay.bundle): lay.sha256 for lay in self.layers}
        found.update({zip_name(f.bundle): f.sha256 for f in self.functions})
        return found

    def bundle_set(self) -> frozenset[tuple[str, str, str, str]]:
        """What makes two releases the same bytes: (kind, name, architecture, sha256) of each bundle."""
        return frozenset(
            {("function", f.name, f.architecture, f.sha256) for f in self.functions}
            | {("layer", lay.name, lay.architecture, lay.sha256) for lay in self.layers}
        )

    def settings_set(self) -> dict[str, dict[str, Any] | None]:
        """Each function's recorded settings (None: the release records none)."""
        return {f.name: f.settings_json for f in self.functions}

    def same_content(self, other: Release) -> bool:
        """The same bundles, and the same recorded settings where both record them."""
        if self.bundle_set() != other.bundle_set():
            return False
        mine, theirs = self.settings_set(), other.settings_set()
        return all(mine[name] is None or theirs.get(name) is None or mine[name] == theirs[name] for name in mine)

    def to_json(self) -> dict:
        return {
            "schema": RELEASE_SCHEMA,
            "app": self.app,
            "version": self.version,
            "runtime": self.runtime,
            "functions": {f.name: f.to_json() for f in self.functions},
            "layers": {lay.bundle: lay.to_json() for lay in self.layers},
            "git": self.git.to_json() if self.git else None,
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    @classmethod
    def from_json(cls, doc: dict) -> Release:
        git = doc.get("git")
        return cls(
            app=doc["app"],
            version=doc["version"],
            runtime=doc["runtime"],
            functions=[_function(name, f, doc["runtime"]) for name, f in doc["functions"].items()],
            layers=[
                ReleaseLayer(
                    name=lay["name"], architecture=lay["architecture"], manifest=lay["manifest"], sha256=lay["sha256"],
                    code_sha256=lay["code_sha256"], content_digest=lay["content_digest"],
                )
                for lay in doc["layers"].values()
            ],
            git=GitInfo(**git) if git else None,
        )


def _function(name: str, doc: dict, runtime: str) -> ReleaseFunction:
    recorded = doc.get("settings")
    return ReleaseFunction(
        name=name, manifest=doc["manifest"], sha256=doc["sha256"], code_sha256=doc["code_sha256"],
        content_digest=doc["content_digest"], architecture=doc["architecture"], handler=doc["handler"],
        layers=doc.get("layers", ()),
        settings=from_recorded(recorded, handler=doc["handler"], runtime=runtime, architecture=doc["architecture"])
        if recorded is not None else None,
        layer_entries=recorded.get("layers", ()) if recorded is not None else (),
    )


def canonical_json(doc: dict) -> bytes:
    """The one serialisation relay stores: sorted keys, two-space indent, UTF-8, final newline."""
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
