"""`relay publish`: dist/ -> registry, as one immutable, signed release.

Order of writes, and why:

1. the version's index entry (so listings never miss a visible version);
2. the release envelope: the signed statement of the whole release. It is
   written once, so it is the version's claim: a publisher of other bytes for
   the same version finds it and stops before writing any manifest, and
   publishers of the same bytes (same payload) carry on together;
3. blobs, content-addressed (HEAD first: an existing blob is not sent again;
   large ones go up in parallel parts);
4. per bundle: manifest, SBOM, envelope, each written once. A layer manifest
   is shared by every release holding the same layer bytes: if one is stored
   already, it is adopted. The SBOM and the statement derive from the stored
   manifest alone, so anyone can complete a bundle a killed run left half done;
5. the release document, last, with If-None-Match: only then does the version
   exist for `versions`, `verify` and promotion.

A publish killed anywhere leaves no visible half-version, and running it again
completes it. Before reading or writing anything it checks the signer: a key
the trusted keys do not hold is refused (UntrustedSigningKey), since what it
signs would take the version and never verify. Then, before writing, it checks the version: published with
the same bundles -> nothing to do (one GET); with other bytes -> refused
(VersionConflict), nothing written.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor

import attrs
import semver

from builder import __version__
from builder.aws.errors import PreconditionFailed
from builder.config import Function, Project
from builder.dist import Dist, DistBundle, load_dist
from builder.errors import RaceLost, UsageError, VerificationFailed, VersionConflict
from builder.frozen import to_tuple
from builder.models import GitInfo, Manifest, bundle_name
from builder.progress import Reporter, SilentReporter
from builder.registry import statement as stmt
from builder.registry.catalog import Catalog, parse_release
from builder.registry.layout import Layout, envelope_key, sbom_key
from builder.registry.release import Release, ReleaseFunction, ReleaseLayer, canonical_json
from builder.registry.sbom import bundle_sbom
from builder.registry.signing import (
    Envelope,
    Signer,
    TrustedKeys,
    refuse_retired,
    refuse_untrusted,
    sign_envelope,
)
from builder.registry.store import Store, create_or_read
from builder.registry.versions import BUMP_PARTS, bump, parse_version
from builder.secret_values import refuse_credentials
from builder.textfmt import human_size

# With --bump, a version taken meanwhile by other bytes moves the bump on; this many times at most.
_BUMP_ATTEMPTS = 10
_BLOB_WORKERS = 4
_DOC_WORKERS = 8


@attrs.frozen
class VersionRequest:
    """`--version X` or `--bump major|minor|patch`: exactly one."""

    version: str | None = None
    bump: str | None = None

    def __attrs_post_init__(self) -> None:
        if (self.version is None) == (self.bump is None):
            raise UsageError("give either --version X or --bump major|minor|patch")
        if self.bump is not None and self.bump not in BUMP_PARTS:
            raise UsageError(f"cannot bump {self.bump!r}", hint=f"Bump one of: {', '.join(BUMP_PARTS)}.")
        if self.version is not None:
            parse_version(self.version)


@attrs.frozen
class BundleOutcome:
    kind: str
    name: str
    architecture: str
    sha256: str
    size: int
    manifest_key: str
    blob: str  # "uploaded" | "present"
    docs: str  # "written" | "present" | "adopted"

    def to_json(self) -> dict:
        return attrs.asdict(self)


@attrs.frozen
class _Claim:
    """The release envelope that claims a version: its key, its payload, and whether it is stored already."""

    key: str
    payload: bytes
    held: bool


@attrs.frozen
class PublishResult:
    app: str
    version: str
    status: str  # "published" | "unchanged"
    release_key: str
    bundles: tuple[BundleOutcome, ...] = attrs.field(default=(), converter=to_tuple)
    note: str = ""
    requests: dict[str, int] = attrs.field(factory=dict)

    @property
    def uploaded(self) -> tuple[BundleOutcome, ...]:
        return tuple(b for b in self.bundles if b.blob == "uploaded")

    def to_json(self) -> dict:
        return {
            "app": self.app,
            "version": self.version,
            "status": self.status,
            "release": self.release_key,
            "note": self.note,
            "bundles": [b.to_json() for b in self.bundles],
            "aws_requests": {"total": sum(self.requests.values()), "by_operation": self.requests},
        }


def publish(
    project: Project,
    store: Store,
    signer: Signer,
    request: VersionRequest,
    *,
    dist: Dist | None = None,
    reporter: Reporter | None = None,
    trusted: TrustedKeys | None = None,
) -> PublishResult:
    """Publish the project's dist/ as one release (see the module doc for the order of writes).

    `trusted`: the keys readers will verify with (the command passes the config's
    plus the local sandbox's when it is in use); default: the config's
    `trusted_keys`. The signer must be one of them.
    """
    registry = project.require_registry()
    refuse_untrusted(trusted if trusted is not None else TrustedKeys.from_config(registry.trusted_keys),
                     signer.keyid, config=project.config_file.name)
    publisher = _Publisher(project, store, signer, dist or load_dist(project), reporter or SilentReporter())
    if request.version is not None:
        return publisher.publish(parse_version(request.version))
    return publisher.publish_bump(request.bump or "patch")


class _Publisher:
    def __init__(self, project: Project, store: Store, signer: Signer, dist: Dist, reporter: Reporter) -> None:
        self.app = project.name
        self.project = project
        self.store = store
        self.layout: Layout = store.layout
        self.signer = signer
        self.dist = dist
        self.reporter = reporter
        self.catalog = Catalog(store, self.app)

    # -- choosing the version ---------------------------------------------------------------------

    def publish_bump(self, part: str) -> PublishResult:
        latest = self.catalog.latest_release()
        if latest is not None and latest.release.same_content(self.draft(latest.version)):
            return self._unchanged(latest.version, f"the latest release {latest.version} holds exactly these bundles "
                                                   "and settings")
        candidate = bump(parse_version(latest.version) if latest else None, part)
        for _ in range(_BUMP_ATTEMPTS):
            try:
                return self.publish(candidate)
            except VersionConflict as exc:
                self.reporter.note(f"{candidate} is taken ({exc.message}); trying the next {part} version")
                candidate = bump(candidate, part)
        raise VersionConflict(f"--bump {part}: {_BUMP_ATTEMPTS} versions in a row were taken", hint="Retry, or pass --version.")

    # -- one version ------------------------------------------------------------------------------

    def publish(self, version: semver.Version) -> PublishResult:
        release = self.draft(str(version))
        release_key = self.layout.release(self.app, release.version)
        existing = self.store.read_optional(release_key)
        if existing is not None:
            return self._already_published(release, existing.body, release_key)
        claim = self._preflight(version, release)
        # Nothing has been written up to here; from here on every write is write-once.
        return self._write(version, release, release_key, claim)

    def _preflight(self, version: semver.Version, release: Release) -> _Claim:
        """Refuse (VersionConflict) before any write when the version is not ours to publish."""
        self._check_precedence(version)
        refuse_retired(self.project.require_registry().trusted_keys, self.signer.keyid)
        key = envelope_key(self.layout.release(self.app, release.version))
        payload = stmt.encode(stmt.release_statement(release, release_sha256=_sha256(release.to_bytes()),
                                                     relay_version=__version__, documents=self._documents(release.version)))
        stored = self.store.read_optional(key)
        if stored is not None:
            self._check_claim(stored.body, payload, release.version)
        return _Claim(key, payload, held=stored is not None)

    def _write(self, version: semver.Version, release: Release, release_key: str, claim: _Claim) -> PublishResult:
        text = release.version
        self.reporter.step(f"publishing {self.app}@{text} to {self.store.where}")
        create_or_read(self.store, self.layout.index_entry(self.app, version), b"", content_type="application/octet-stream")
        if not claim.held:
            self._claim(claim.key, claim.payload, text)
        blobs = self._upload_blobs()
        with ThreadPoolExecutor(max_workers=_DOC_WORKERS, thread_name_prefix="relay-docs") as pool:
            docs = list(pool.map(lambda b: self._bundle_docs(b, text), self.dist.bundles))
        outcomes = tuple(
            BundleOutcome(b.manifest.kind, b.manifest.name, b.manifest.architecture, b.manifest.sha256,
                          b.manifest.zipped_size, key, blobs[b.manifest.sha256], state)
            for b, (key, state) in zip(self.dist.bundles, docs, strict=True)
        )
        raced = create_or_read(self.store, release_key, release.to_bytes())
        if raced is not None:
            result = self._already_published(release, raced, release_key)
            return attrs.evolve(result, note="published by another run at the same time, with the same bytes")
        self.reporter.step(f"{self.app}@{text} published: {release_key}")
        return PublishResult(self.app, text, "published", release_key, outcomes)

    def draft(self, version: str) -> Release:
        """The release document this dist/ makes for `version` (pure)."""
        layers = [
            ReleaseLayer(
                name=b.manifest.name, architecture=b.manifest.architecture,
                manifest=self.layout.relative(self._manifest_key(b.manifest, version)),
                sha256=b.manifest.sha256, code_sha256=b.manifest.code_sha256,
                content_digest=b.manifest.content_digest,
            )
            for b in self.dist.layers
        ]
        functions = [
            ReleaseFunction(
                name=b.manifest.name, manifest=self.layout.relative(self._manifest_key(b.manifest, version)),
                sha256=b.manifest.sha256, code_sha256=b.manifest.code_sha256,
                content_digest=b.manifest.content_digest, architecture=b.manifest.architecture,
                handler=b.manifest.handler or "",
                layers=[bundle_name("layer", ref.name, b.manifest.architecture) for ref in b.manifest.layers],
                **self._recorded_settings(b.manifest),
            )
            for b in self.dist.functions
        ]
        git = GitInfo.combined(b.manifest.git for b in self.dist.bundles)  # each bundle says whether it is dirty
        return Release(app=self.app, version=version, runtime=self.dist.runtime, functions=functions,
                       layers=layers, git=git)

    def _recorded_settings(self, manifest: Manifest) -> dict:
        """The function's settings as relay.toml has them now, for the release to record (secrets refused).

        A bundle in dist/ that the config no longer declares is published as built, without settings.
        """
        config: Function | None = self.project.functions.get(manifest.name)
        if config is None:
            return {}
        refuse_credentials(dict(config.settings.environment), f"functions.{manifest.name}.environment",
                           self.project.config_file.name)
        entries = [entry if entry not in self.project.layers else bundle_name("layer", entry, manifest.architecture)
                   for entry in config.layer_entries]
        settings = attrs.evolve(config.settings, handler=manifest.handler or config.settings.handler,
                                runtime=self.dist.runtime, architecture=manifest.architecture, layers=())
        return {"settings": settings, "layer_entries": entries}

    def _manifest_key(self, manifest: Manifest, version: str) -> str:
        if manifest.kind == "function":
            return self.layout.function_manifest(self.app, manifest.name, version)
        return self.layout.layer_manifest(self.app, manifest.name, manifest.architecture, manifest.sha256)

    # -- checks before writing --------------------------------------------------------------------

    def _already_published(self, ours: Release, stored: bytes, key: str) -> PublishResult:
        theirs = parse_release(stored, what=key)
        if theirs.same_content(ours):
            return self._unchanged(ours.version, "already published with the same bytes")
        raise VersionConflict(f"{self.app}@{ours.version} is already published with other bytes: "
                              f"{_differences(theirs, ours)}")

    def _unchanged(self, version: str, note: str) -> PublishResult:
        return PublishResult(self.app, version, "unchanged", self.layout.release(self.app, version), note=note)

    def _check_precedence(self, version: semver.Version) -> None:
        for info in self.store.list(self.layout.precedence_prefix(self.app, version), page_size=10):
            other = self.layout.version_of_index_entry(info.key)
            if other != str(version):
                raise VersionConflict(f"{self.app}@{version} has the same precedence as {other}, which exists "
                                      "(semver ignores build metadata when ordering)")

    def _check_claim(self, stored: bytes, payload: bytes, version: str) -> None:
        envelope = Envelope.from_bytes(stored, what=f"{self.app}@{version} release envelope")
        if envelope.payload != payload:
            raise VersionConflict(
                f"{self.app}@{version} is being published (or was left unfinished) by another build with other bytes",
                hint="Rerun that build's publish to finish it, or publish another version (e.g. --bump patch).",
            )

    def _documents(self, version: str) -> tuple[stmt.BundleDocs, ...]:
        """Each bundle's manifest and SBOM digests as they will be stored, for the release statement to vouch for.

        A layer manifest stored already (by an earlier release, perhaps signed by
        a key since rotated out) is adopted as stored, so its stored digests are
        the ones vouched for.
        """
        with ThreadPoolExecutor(max_workers=_DOC_WORKERS, thread_name_prefix="relay-docs") as pool:
            return tuple(pool.map(lambda b: self._bundle_digests(b, version), self.dist.bundles))

    def _bundle_digests(self, bundle: DistBundle, version: str) -> stmt.BundleDocs:
        ours = attrs.evolve(bundle.manifest, version=version if bundle.manifest.kind == "function" else None)
        key = self._manifest_key(ours, version)
        stored = self.store.read_optional(key)
        body = stored.body if stored is not None else canonical_json(ours.to_json())
        manifest = ours if stored is None else Manifest.from_json(json.loads(body))
        sbom = self.store.read_optional(sbom_key(key)) if stored is not None else None
        return stmt.BundleDocs(bundle=ours.bundle_name, manifest=self.layout.relative(key), manifest_sha256=_sha256(body),
                               sbom_sha256=_sha256(sbom.body if sbom is not None else bundle_sbom(manifest)))

    # -- writes -----------------------------------------------------------------------------------

    def _claim(self, key: str, payload: bytes, version: str) -> None:
        raced = create_or_read(self.store, key, sign_envelope(payload, self.signer).to_bytes())
        if raced is not None:
            self._check_claim(raced, payload, version)

    def _upload_blobs(self) -> dict[str, str]:
        unique = {b.manifest.sha256: b for b in self.dist.bundles}
        with ThreadPoolExecutor(max_workers=_BLOB_WORKERS, thread_name_prefix="relay-blob") as pool:
            states = list(pool.map(self._upload_blob, unique.values()))
        return dict(zip(unique, states, strict=True))

    def _upload_blob(self, bundle: DistBundle) -> str:
        manifest = bundle.manifest
        key = self.layout.blob(manifest.sha256)
        present = self.store.head(key)
        if present is not None:
            if present.size != manifest.zipped_size:
                raise VerificationFailed(f"{key} holds {present.size} bytes, but {bundle.zip_name} has "
                                         f"{manifest.zipped_size}: the registry's blob is damaged")
            return "present"
        self.reporter.step(f"uploading {bundle.zip_name} ({human_size(manifest.zipped_size)})")
        try:
            self.store.create_file(key, bundle.zip_path, checksum_sha256=manifest.code_sha256,
                                   on_part=lambda n, total: self.reporter.step(f"{bundle.zip_name}: part {n}/{total}"))
        except PreconditionFailed:
            return "present"  # another publisher sent the same bytes meanwhile
        return "uploaded"

    def _bundle_docs(self, bundle: DistBundle, version: str) -> tuple[str, str]:
        """Manifest, SBOM, then envelope of one bundle; returns (manifest key, state)."""
        # A function's manifest belongs to this version; a layer's is shared by every release holding it.
        ours = attrs.evolve(bundle.manifest, version=version if bundle.manifest.kind == "function" else None)
        key = self._manifest_key(ours, version)
        env_key = envelope_key(key)
        if self.store.head(env_key) is not None:
            return key, "present"  # the envelope is written last: the bundle's documents are complete
        manifest, manifest_bytes, state = self._write_manifest(key, ours)
        sbom = bundle_sbom(manifest)
        sbom = create_or_read(self.store, sbom_key(key), sbom) or sbom
        payload = stmt.encode(stmt.bundle_statement(manifest, manifest_sha256=_sha256(manifest_bytes),
                                                    sbom_sha256=_sha256(sbom)))
        raced = create_or_read(self.store, env_key, sign_envelope(payload, self.signer).to_bytes())
        if raced is not None and Envelope.from_bytes(raced, what=env_key).payload != payload:
            raise RaceLost(f"{env_key} was written meanwhile for other bytes", hint="Rerun relay publish.")
        return key, state

    def _write_manifest(self, key: str, ours: Manifest) -> tuple[Manifest, bytes, str]:
        body = canonical_json(ours.to_json())
        stored = create_or_read(self.store, key, body)
        if stored is None or stored == body:
            return ours, body, "written"
        theirs = Manifest.from_json(json.loads(stored))
        if _same_bundle(theirs, ours):
            return theirs, stored, "adopted"
        raise VersionConflict(f"{key} holds another bundle (sha256 {theirs.sha256[:12]}, this build "
                              f"{ours.sha256[:12]})")


def _same_bundle(a: Manifest, b: Manifest) -> bool:
    keys = ("app", "kind", "name", "architecture", "runtime", "sha256", "version")
    return all(getattr(a, k) == getattr(b, k) for k in keys)


def _differences(theirs: Release, ours: Release) -> str:
    before = {(k, n, a): s for k, n, a, s in theirs.bundle_set()}
    after = {(k, n, a): s for k, n, a, s in ours.bundle_set()}
    lines = []
    for ident in sorted(set(before) | set(after)):
        kind, name, arch = ident
        label = name if kind == "function" else f"layer {name} ({arch})"
        old, new = before.get(ident), after.get(ident)
        if old != new:
            lines.append(f"{label}: registry {old[:12] if old else 'absent'}, this build {new[:12] if new else 'absent'}")
    mine, stored = ours.settings_set(), theirs.settings_set()
    lines.extend(f"{name}: its settings differ from relay.toml's" for name in sorted(mine)
                 if mine[name] is not None and stored.get(name) is not None and mine[name] != stored[name])
    return "; ".join(lines) or "the release documents differ"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
