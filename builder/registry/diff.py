"""`relay diff V1 V2`: which functions and layers changed between two releases, how their locks moved,
and which of a function's recorded settings (memory, environment variables, layers, ...) changed.

The differ is pure (`diff_releases` over `ReleaseContents`); `read_contents`
reads one release and its manifests from the registry and checks them on the
way in: every manifest agrees with the release entry that names it (digest,
name, kind, architecture), and, when trusted keys are configured, the release
document and each manifest carry a valid signature by a trusted key over
their exact bytes. Blobs are not read (that is `relay verify`'s job, and what
`relay promote` does before touching anything): a diff answers "what would
change", it deploys nothing. `builder.commands.render.diff` renders it for people.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from builder.dist import zip_name
from builder.errors import NotFound, VerificationFailed
from builder.frozen import to_tuple
from builder.models import Manifest
from builder.registry import statement as stmt
from builder.registry.catalog import parse_release
from builder.registry.layout import envelope_key
from builder.registry.release import Release, ReleaseFunction, ReleaseLayer
from builder.registry.signing import Envelope, TrustedKeys, UntrustedSigner, verify_envelope
from builder.registry.store import Store
from builder.registry.verify import parse_manifest
from builder.registry.versions import parse_version

ADDED = "added"
REMOVED = "removed"
CHANGED = "changed"
UNCHANGED = "unchanged"
UPGRADED = "upgraded"
DOWNGRADED = "downgraded"
_READERS = 8


# -- what the differ compares ----------------------------------------------------------------------


@attrs.frozen
class BundleView:
    """One bundle of a release, as far as a diff cares."""

    kind: str  # "function" | "layer"
    name: str  # function or layer name
    bundle: str  # "orders", "layer-common-x86_64"
    architecture: str
    sha256: str
    packages: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)  # the lock's "name==version"
    layers: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)  # functions: "<layer bundle>@<sha256>"
    settings: dict | None = attrs.field(default=None, hash=False)  # functions: the release's recorded settings


@attrs.frozen
class ReleaseContents:
    app: str
    version: str
    bundles: tuple[BundleView, ...] = attrs.field(converter=to_tuple)

    def by_bundle(self) -> dict[str, BundleView]:
        return {b.bundle: b for b in self.bundles}


def contents_of(release: Release, manifests: Mapping[str, Manifest]) -> ReleaseContents:
    """The diffable view of `release`, given its manifests by bundle name."""
    views = []
    entries: list[ReleaseFunction | ReleaseLayer] = [*release.functions, *release.layers]
    for entry in entries:
        manifest = manifests[entry.bundle]
        layer_refs = tuple(f"layer-{ref.name}-{manifest.architecture}@{ref.sha256}" for ref in manifest.layers)
        views.append(BundleView(
            kind="function" if isinstance(entry, ReleaseFunction) else "layer", name=entry.name, bundle=entry.bundle,
            architecture=entry.architecture, sha256=entry.sha256,
            packages=manifest.lock.packages if manifest.lock else (), layers=layer_refs,
            settings=entry.settings_json if isinstance(entry, ReleaseFunction) else None,
        ))
    return ReleaseContents(release.app, release.version, views)


# -- the diff ------------------------------------------------------------------------------------


@attrs.frozen
class PackageChange:
    name: str
    change: str  # added | removed | upgraded | downgraded | changed (versions that do not parse)
    from_version: str | None
    to_version: str | None

    def to_json(self) -> dict:
        return attrs.asdict(self)


@attrs.frozen
class SettingChange:
    """One recorded setting of a function that differs: `memory`, `environment.TABLE_NAME`, `layers`, ..."""

    key: str
    from_value: Any  # None: not set in the older release
    to_value: Any  # None: not set in the newer one

    def to_json(self) -> dict:
        return {"key": self.key, "from": self.from_value, "to": self.to_value}


@attrs.frozen
class BundleDiff:
    kind: str
    name: str
    bundle: str
    status: str  # added | removed | changed | unchanged (by digest)
    from_sha256: str | None
    to_sha256: str | None
    packages: tuple[PackageChange, ...] = attrs.field(default=(), converter=to_tuple)
    layers_changed: bool = False  # a function whose needed layer digests differ (its own bytes may not)
    settings: tuple[SettingChange, ...] = attrs.field(default=(), converter=to_tuple)
    settings_unknown: bool = False  # a release on either side records no settings (published before relay did)

    def to_json(self) -> dict:
        return {
            "kind": self.kind, "name": self.name, "bundle": self.bundle, "status": self.status,
            "from_sha256": self.from_sha256, "to_sha256": self.to_sha256,
            "layers_changed": self.layers_changed, "packages": [p.to_json() for p in self.packages],
            "settings": [c.to_json() for c in self.settings], "settings_recorded": not self.settings_unknown,
        }


@attrs.frozen
class ReleaseDiff:
    app: str
    from_version: str
    to_version: str
    bundles: tuple[BundleDiff, ...] = attrs.field(converter=to_tuple)
    checked: str = ""  # how the inputs were checked, for the reader

    @property
    def differences(self) -> tuple[BundleDiff, ...]:
        return tuple(b for b in self.bundles if b.status != UNCHANGED or b.layers_changed or b.settings)

    def to_json(self) -> dict:
        return {
            "app": self.app, "from": self.from_version, "to": self.to_version, "checked": self.checked,
            "changed": bool(self.differences), "bundles": [b.to_json() for b in self.bundles],
        }


def diff_releases(old: ReleaseContents, new: ReleaseContents, *, checked: str = "") -> ReleaseDiff:
    """Per bundle of either release: added, removed, changed or unchanged, with its package changes."""
    before, after = old.by_bundle(), new.by_bundle()
    diffs = []
    for bundle in sorted(set(before) | set(after), key=lambda b: (b.startswith("layer-"), b)):
        a, b = before.get(bundle), after.get(bundle)
        if a is None:
            assert b is not None
            diffs.append(BundleDiff(b.kind, b.name, bundle, ADDED, None, b.sha256, diff_packages((), b.packages)))
        elif b is None:
            diffs.append(BundleDiff(a.kind, a.name, bundle, REMOVED, a.sha256, None, diff_packages(a.packages, ())))
        else:
            status = UNCHANGED if a.sha256 == b.sha256 else CHANGED
            unknown = b.kind == "function" and (a.settings is None or b.settings is None)
            diffs.append(BundleDiff(b.kind, b.name, bundle, status, a.sha256, b.sha256,
                                    diff_packages(a.packages, b.packages), layers_changed=a.layers != b.layers,
                                    settings=diff_settings(a.settings or {}, b.settings or {}) if not unknown else (),
                                    settings_unknown=unknown))
    return ReleaseDiff(new.app, old.version, new.version, diffs, checked)


def diff_settings(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[SettingChange, ...]:
    """Each recorded setting that differs; objects (environment, logging, vpc) key by key, in key order."""
    before, after = _flat(old), _flat(new)
    return tuple(SettingChange(key, before.get(key), after.get(key)) for key in sorted(set(before) | set(after))
                 if before.get(key) != after.get(key))


def _flat(settings: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in settings.items():
        if isinstance(value, Mapping):
            flat.update({f"{name}.{key}": item for key, item in value.items()})
        else:
            flat[name] = value
    return flat


def diff_packages(old: Iterable[str], new: Iterable[str]) -> list[PackageChange]:
    """Locked packages ("name==version") added, removed, upgraded or downgraded, by canonical name."""
    before, after = _pins(old), _pins(new)
    changes = []
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        if a == b:
            continue
        if a is None:
            changes.append(PackageChange(name, ADDED, None, b))
        elif b is None:
            changes.append(PackageChange(name, REMOVED, a, None))
        else:
            changes.append(PackageChange(name, _direction(a, b), a, b))
    return changes


def _pins(lines: Iterable[str]) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in lines:
        name, sep, version = line.partition("==")
        if sep:
            pins[canonicalize_name(name)] = version.strip()
    return pins


def _direction(old: str, new: str) -> str:
    try:
        a, b = Version(old), Version(new)
    except InvalidVersion:
        return CHANGED
    if a == b:
        return CHANGED  # equal versions spelled differently ("1.0" vs "1.0.0")
    return UPGRADED if b > a else DOWNGRADED


# -- reading a release from the registry ------------------------------------------------------------


def diff_versions(store: Store, app: str, old: str, new: str, trusted: TrustedKeys) -> ReleaseDiff:
    """Read and check releases `old` and `new` of `app`, then diff them."""
    before = read_contents(store, app, old, trusted)
    after = read_contents(store, app, new, trusted)
    checked = ("release documents and manifests: signatures by trusted keys and digests checked (blobs not read)"
               if trusted else
               "signatures NOT checked: no [[registry.trusted_keys]] configured; manifests checked against the releases")
    return diff_releases(before, after, checked=checked)


def read_contents(store: Store, app: str, version: str, trusted: TrustedKeys) -> ReleaseContents:
    parse_version(version)
    key = store.layout.release(app, version)
    stored = store.read_optional(key)
    if stored is None:
        raise NotFound(f"{app}@{version} is not published ({key} does not exist)")
    release = parse_release(stored.body, what=key)
    if (release.app, release.version) != (app, version):
        raise VerificationFailed(f"{key}: the document is for {release.app}@{release.version}")
    vouching = _check_release_signature(store, key, stored.body, release, trusted) if trusted else None
    entries: list[ReleaseFunction | ReleaseLayer] = [*release.functions, *release.layers]
    with ThreadPoolExecutor(max_workers=_READERS, thread_name_prefix="relay-diff") as pool:
        manifests = list(pool.map(lambda e: _read_manifest(store, release, e, trusted, vouching), entries))
    return contents_of(release, {e.bundle: m for e, m in zip(entries, manifests, strict=False)})


def _check_release_signature(store: Store, key: str, body: bytes, release: Release,
                             trusted: TrustedKeys) -> stmt.StatementView:
    """The release's verified statement (it also vouches for its manifests' digests: see `_read_manifest`)."""
    statement = _signed_statement(store, envelope_key(key), trusted)
    problems = []
    if statement.byproduct(stmt.RELEASE_NAME) != _sha256(body):
        problems.append("the release document is not the one signed")
    if (statement.external.get("app"), statement.external.get("version")) != (release.app, release.version):
        problems.append(f"the signature is for {statement.external.get('app')}@{statement.external.get('version')}")
    if statement.subjects != release.subjects():
        problems.append("the signed bundles differ from the release's")
    if problems:
        raise VerificationFailed(f"{key}: {'; '.join(problems)}")
    return statement


def _read_manifest(store: Store, release: Release, entry: ReleaseFunction | ReleaseLayer, trusted: TrustedKeys,
                   vouching: stmt.StatementView | None = None) -> Manifest:
    key = store.layout.key(entry.manifest)
    stored = store.read_optional(key)
    if stored is None:
        raise VerificationFailed(f"{key} is missing (named by {release.app}@{release.version})")
    manifest = parse_manifest(key, stored.body)
    kind = "function" if isinstance(entry, ReleaseFunction) else "layer"
    expected = {"app": release.app, "kind": kind, "name": entry.name, "architecture": entry.architecture,
                "sha256": entry.sha256}
    wrong = [f"{field} is {getattr(manifest, field)!r}, the release says {value!r}"
             for field, value in expected.items() if getattr(manifest, field) != value]
    if wrong:
        raise VerificationFailed(f"{key}: manifest disagrees with {release.app}@{release.version}: {'; '.join(wrong)}")
    if trusted:
        try:
            statement = _signed_statement(store, envelope_key(key), trusted)
        except UntrustedSigner:
            # A layer unchanged since a key was rotated: as in `relay verify`, the trusted release
            # statement must name this manifest's exact digest.
            if isinstance(entry, ReleaseFunction) or vouching is None or \
                    vouching.dependency(stmt.MANIFEST_DEPENDENCY + manifest.bundle_name) != _sha256(stored.body):
                raise
            return manifest
        if statement.byproduct(stmt.MANIFEST_NAME) != _sha256(stored.body):
            raise VerificationFailed(f"{key}: the manifest is not the one signed (it was changed)")
        if statement.subjects != {zip_name(manifest.bundle_name): manifest.sha256}:
            raise VerificationFailed(f"{key}: the signature names other bytes than the manifest")
    return manifest


def _signed_statement(store: Store, key: str, trusted: TrustedKeys) -> stmt.StatementView:
    stored = store.read_optional(key)
    if stored is None:
        raise VerificationFailed(f"{key} is missing")
    envelope = Envelope.from_bytes(stored.body, what=key)
    verify_envelope(envelope, trusted, what=key)
    return stmt.StatementView.parse(envelope.payload, what=key)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

