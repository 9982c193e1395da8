"""Every key of the registry, in one place (shared/DESIGN.md, "Registry layout").

```
<prefix>/blobs/sha256/<hex>                                bundle bytes, written once
<prefix>/<app>/functions/<fn>/<version>/manifest.json      + manifest.dsse.json + sbom.cdx.json
<prefix>/<app>/layers/<layer>/<arch>/<sha256>/manifest.json + manifest.dsse.json + sbom.cdx.json
<prefix>/<app>/releases/<version>.json                     + <version>.dsse.json (the .json last)
<prefix>/<app>/index/releases/<order>_<version>            empty: one per version, newest first
<prefix>/<app>/cache/<build_key>.json                      remote build cache entry
<prefix>/<app>/ledger/<env>/<seq>.json                     promotion ledger records (builder.promote.ledger)
```

A release document names its manifests by key relative to `<prefix>/`, so a
registry copied under another prefix stays valid. Layer keys carry the
architecture (DESIGN.md has `layers/<layer>/<sha256>/`): a pure-Python layer
built for x86_64 and arm64 is the same bytes, yet two bundles with two manifests.
"""

from __future__ import annotations

import posixpath

import attrs
import semver

from builder.names import check_digest, check_name, check_version
from builder.registry.versions import order_key

MANIFEST = "manifest.json"
ENVELOPE = "manifest.dsse.json"
SBOM = "sbom.cdx.json"


@attrs.frozen
class Layout:
    prefix: str = attrs.field(default="relay", converter=lambda p: p.strip("/"))

    def key(self, relative: str) -> str:
        """The full key of a key relative to the prefix."""
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def relative(self, key: str) -> str:
        head = f"{self.prefix}/" if self.prefix else ""
        return key[len(head):] if head and key.startswith(head) else key

    def blob(self, sha256: str) -> str:
        return self.key(f"blobs/sha256/{sha256}")

    def function_dir(self, app: str, function: str, version: str) -> str:
        _safe(app, function=function, version=version)
        return self.key(f"{app}/functions/{function}/{version}")

    def layer_dir(self, app: str, layer: str, architecture: str, sha256: str) -> str:
        _safe(app, layer=layer, architecture=architecture)
        check_digest(sha256, f"registry key of layer {layer}")
        return self.key(f"{app}/layers/{layer}/{architecture}/{sha256}")

    def function_manifest(self, app: str, function: str, version: str) -> str:
        return f"{self.function_dir(app, function, version)}/{MANIFEST}"

    def layer_manifest(self, app: str, layer: str, architecture: str, sha256: str) -> str:
        return f"{self.layer_dir(app, layer, architecture, sha256)}/{MANIFEST}"

    def release(self, app: str, version: str) -> str:
        _safe(app, version=version)
        return self.key(f"{app}/releases/{version}.json")

    def releases_prefix(self, app: str) -> str:
        _safe(app)
        return self.key(f"{app}/releases/")

    def index_prefix(self, app: str) -> str:
        _safe(app)
        return self.key(f"{app}/index/releases/")

    def index_entry(self, app: str, version: semver.Version) -> str:
        return f"{self.index_prefix(app)}{order_key(version)}_{version}"

    def precedence_prefix(self, app: str, version: semver.Version) -> str:
        """Index entries of every version with `version`'s precedence (they differ in build metadata)."""
        return f"{self.index_prefix(app)}{order_key(version)}_"

    def version_of_index_entry(self, key: str) -> str:
        return key.rsplit("/", 1)[-1].split("_", 1)[1]

    def ledger_prefix(self, app: str, env: str) -> str:
        """`<prefix>/<app>/ledger/<env>/`: the environment's records (builder.promote.ledger); env is a safe name."""
        _safe(app, environment=env)
        return self.key(f"{app}/ledger/{env}/")

    def cache_entry(self, app: str, build_key: str) -> str:
        return self.key(f"{app}/cache/{build_key}.json")


def _safe(app: str, *, version: str | None = None, **names: str) -> None:
    """Every name that goes into a key is a safe name (builder.names): no key holds `/`, `..` or NUL from a name."""
    check_name(app, "registry key: app")
    for what, value in names.items():
        check_name(value, f"registry key of app {app}: {what}")
    if version is not None:
        check_version(version, f"registry key of app {app}: version")


def envelope_key(document_key: str) -> str:
    """`.../manifest.json` -> `.../manifest.dsse.json`; `.../2.3.0.json` -> `.../2.3.0.dsse.json`."""
    stem = document_key[: -len(".json")] if document_key.endswith(".json") else document_key
    return f"{stem}.dsse.json"


def sbom_key(manifest_key: str) -> str:
    return posixpath.join(posixpath.dirname(manifest_key), SBOM)
