"""Finding versions without listing the registry.

Why an ordered index and not a listing of `releases/`: semver precedence is
not the keys' lexical order (2.10.0 sorts before 2.9.0, prereleases and build
metadata worse), so finding the latest by listing `releases/` reads every key:
two per version, 20 requests at 10,000 versions, growing without bound. An
index object updated with If-Match would be one GET, but every publish would
rewrite (and race on) an object that grows with the history. Instead each
version gets one empty key `index/releases/<order>_<version>`, where `<order>`
(see `versions.order_key`) sorts newest first. S3 lists keys in ascending
order, so the newest versions are the first keys of the first page: the
latest costs one LIST plus one HEAD to confirm its release document exists,
whatever the number of versions; `relay versions` reads one page of N.

The index entry is written before anything else of a version and the release
document last, so the index never misses a visible version; an entry whose
release document is absent is an unfinished (or concurrent) publish and is
skipped: only versions whose release document exists are trusted.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import attrs
import semver

from builder.errors import NotFound, VerificationFailed
from builder.frozen import to_tuple
from builder.names import check_digest, check_name, check_version, shown
from builder.registry.release import Release
from builder.registry.store import Store

_PAGE = 50
_READERS = 16


@attrs.frozen
class VersionEntry:
    """A published version: its release document and when it was written."""

    version: str
    key: str
    published: dt.datetime
    release: Release
    raw: bytes

    def to_json(self) -> dict:
        return {
            "version": self.version,
            "published": self.published.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
            "release": self.key,
            "functions": {f.name: {"sha256": f.sha256, "architecture": f.architecture} for f in self.release.functions},
            "layers": {lay.bundle: {"sha256": lay.sha256} for lay in self.release.layers},
        }


class Catalog:
    """The versions of one app in a registry, newest first by semver precedence."""

    def __init__(self, store: Store, app: str) -> None:
        self.store = store
        self.app = app
        self.layout = store.layout
        # Versions whose release document exists but is not one (version, why), met by `releases()`: skipped there.
        self.unreadable: list[tuple[str, str]] = []

    def indexed_versions(self, *, page_size: int = _PAGE) -> Iterator[str]:
        """Every version with an index entry (published or not yet), newest first, lazily."""
        for info in self.store.list(self.layout.index_prefix(self.app), page_size=page_size):
            yield self.layout.version_of_index_entry(info.key)

    def latest(self) -> str | None:
        """The newest published version: one LIST, then one HEAD per entry until a release exists."""
        for version in self.indexed_versions(page_size=10):
            if self.store.head(self.layout.release(self.app, version)) is not None:
                return version
        return None

    def latest_release(self) -> VersionEntry | None:
        return next(self.releases(limit=1, page_size=10), None)

    def read(self, version: str) -> VersionEntry | None:
        """The published release `version`, or None when its release document does not exist."""
        key = self.layout.release(self.app, version)
        stored = self.store.read_optional(key)
        if stored is None:
            return None
        release = parse_release(stored.body, what=key)
        if release.app != self.app or release.version != version:
            raise VerificationFailed(f"{key}: holds {shown(release.app)}@{shown(release.version)}, not "
                                     f"{self.app}@{version}", hint="Check who wrote this release document.")
        return VersionEntry(version, key, stored.info.last_modified, release, stored.body)

    def releases(self, *, limit: int | None = None, page_size: int = _PAGE) -> Iterator[VersionEntry]:
        """Published releases, newest first; reads release documents a batch at a time, in parallel."""
        candidates = self.indexed_versions(page_size=page_size if limit is None else min(page_size, max(limit, 1) + 5))
        produced = 0
        with ThreadPoolExecutor(max_workers=_READERS, thread_name_prefix="relay-catalog") as pool:
            while limit is None or produced < limit:
                wanted = _READERS if limit is None else min(_READERS, limit - produced)
                batch = list(itertools.islice(candidates, wanted))
                if not batch:
                    return
                for entry in pool.map(self._read_quietly, batch):
                    if entry is not None:
                        yield entry
                        produced += 1
                        if limit is not None and produced >= limit:
                            return

    def _read_quietly(self, version: str) -> VersionEntry | None:
        try:
            return self.read(version)
        except VerificationFailed as exc:
            self.unreadable.append((version, exc.message))  # skipped here, reported by the caller; `relay verify` says more
            return None


def parse_release(body: bytes, *, what: str) -> Release:
    """A stored release document: VerificationFailed when it is not one, or names a name no key may hold."""
    try:
        release = Release.from_json(json.loads(body))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise VerificationFailed(f"{what}: not a release document ({type(exc).__name__}: {exc})",
                                 hint="Check who wrote it; `relay verify` checks the rest of the registry.") from None
    check_release_names(release, what)
    return release


def check_release_names(release: Release, what: str) -> None:
    """Every name and digest a release document holds is safe to use in a key or a file name (builder.names)."""
    check_name(release.app, f"{what}: app")
    check_version(release.version, f"{what}: version")
    for fn in release.functions:
        check_name(fn.name, f"{what}: functions")
        check_name(fn.architecture, f"{what}: functions.{fn.name}.architecture")
        check_digest(fn.sha256, f"{what}: functions.{fn.name}.sha256")
        _check_key(fn.manifest, f"{what}: functions.{fn.name}.manifest")
        for bundle in fn.layers:
            check_name(bundle, f"{what}: functions.{fn.name}.layers")  # a layer bundle name, layer-common-x86_64
    for lay in release.layers:
        check_name(lay.name, f"{what}: layers")
        check_name(lay.architecture, f"{what}: layers.{lay.name}.architecture")
        check_digest(lay.sha256, f"{what}: layers.{lay.name}.sha256")
        _check_key(lay.manifest, f"{what}: layers.{lay.name}.manifest")


def _check_key(key: object, what: str) -> None:
    if not isinstance(key, str) or not key or key.startswith("/") or "\0" in key \
            or any(part in ("", ".", "..") for part in key.split("/")):
        raise VerificationFailed(f"{what}: {shown(key)} is not a registry key", hint="Check who wrote this document.")


def sort_versions(versions: list[str]) -> list[str]:
    """Newest first by semver precedence (for callers holding plain strings)."""
    return sorted(versions, key=semver.Version.parse, reverse=True)


@attrs.frozen
class VersionRow:
    version: str
    published: dt.datetime
    digests: dict[str, str]  # bundle -> sha256 (every bundle, or those of NAME)
    changed: bool | None = None  # NAME's digests differ from the next older version's (None: oldest shown)

    def to_json(self) -> dict:
        return {
            "version": self.version,
            "published": self.published.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
            "digests": dict(sorted(self.digests.items())),
            "changed": self.changed,
        }


@attrs.frozen
class VersionsListing:
    app: str
    name: str | None
    rows: tuple[VersionRow, ...] = attrs.field(converter=to_tuple)
    truncated: bool = False
    # Versions skipped because their release document is unreadable: (version, why).
    unreadable: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=to_tuple)

    def to_json(self) -> dict:
        return {"app": self.app, "name": self.name, "truncated": self.truncated,
                "versions": [r.to_json() for r in self.rows],
                "unreadable": [{"version": v, "error": why} for v, why in self.unreadable]}


def list_versions(store: Store, app: str, *, name: str | None = None, limit: int | None = 20) -> VersionsListing:
    """Published versions newest first, with their digests and dates; of one function or layer when `name`."""
    catalog = Catalog(store, app)
    wanted = None if limit is None else limit + 1  # one more, to know whether more exist
    entries = list(catalog.releases(limit=wanted))
    truncated = limit is not None and len(entries) > limit
    entries = entries[:limit] if limit is not None else entries
    rows = []
    for entry in entries:
        digests = _digests(entry.release, name)
        if name is not None and not digests:
            continue
        rows.append(VersionRow(entry.version, entry.published, digests))
    if name is not None and not rows and not truncated:
        raise NotFound(f"no function or layer named {name!r} in any published version of {app}",
                       hint="`relay versions` lists every version; `relay versions NAME` takes a function or layer name.")
    if name is not None:
        rows = [attrs.evolve(row, changed=(row.digests != rows[i + 1].digests) if i + 1 < len(rows) else None)
                for i, row in enumerate(rows)]
    return VersionsListing(app, name, rows, truncated, unreadable=sorted(catalog.unreadable))


def _digests(release: Release, name: str | None) -> dict[str, str]:
    found = {f.name: f.sha256 for f in release.functions if name in (None, f.name)}
    found.update({lay.bundle: lay.sha256 for lay in release.layers if name in (None, lay.name, lay.bundle)})
    return found
