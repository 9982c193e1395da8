"""`relay verify VERSION`: trust nothing in the registry that the pinned keys do not vouch for.

For a published release it checks, offline against `trusted_keys`:
- the release document (schema, app, version) and its envelope: a trusted
  signature, subjects equal to the release's bundles, the same app and
  version (so an older version's valid envelope replayed under a new version
  fails), and the document's own digest;
- for every function (or the one named) and the layers it needs: the manifest
  is where the release says, its envelope is trusted and names this bundle,
  app, version and the manifest's and SBOM's exact digests, the manifest agrees
  with the release entry, and the blob's sha256 and size are the manifest's.

Every check is reported; any failure raises `ReleaseVerificationFailed`
(exit 8) naming what failed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import attrs

from builder import schemas
from builder.dist import zip_name
from builder.errors import ConfigError, NotFound, VerificationFailed
from builder.frozen import to_tuple
from builder.models import Manifest, bundle_name
from builder.progress import Reporter, SilentReporter
from builder.registry import statement as stmt
from builder.registry.catalog import parse_release
from builder.registry.layout import envelope_key, sbom_key
from builder.registry.release import Release, ReleaseFunction, ReleaseLayer
from builder.registry.signing import Envelope, TrustedKeys, UntrustedSigner, verify_envelope
from builder.registry.store import Store
from builder.registry.versions import parse_version
from builder.textfmt import human_size

T = TypeVar("T")
_WORKERS = 8


@attrs.frozen
class Check:
    subject: str  # "release shop@1.0.0", "function orders", "layer common (x86_64)"
    what: str  # "document", "signature", "manifest", "sbom", "blob"
    ok: bool
    detail: str

    def to_json(self) -> dict:
        return attrs.asdict(self)


@attrs.frozen
class VerifyReport:
    app: str
    version: str
    checks: tuple[Check, ...] = attrs.field(converter=to_tuple)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict:
        return {"app": self.app, "version": self.version, "ok": self.ok, "checks": [c.to_json() for c in self.checks]}


class ReleaseVerificationFailed(VerificationFailed):
    """Verification failed; carries the whole report (printed with --json)."""

    def __init__(self, report: VerifyReport) -> None:
        named = "; ".join(f"{c.subject} {c.what}: {c.detail}" for c in report.failures[:3])
        more = f" (and {len(report.failures) - 3} more)" if len(report.failures) > 3 else ""
        super().__init__(f"{report.app}@{report.version} failed verification: {named}{more}")
        self.report = report

    def to_json(self) -> dict:
        return {**super().to_json(), "report": self.report.to_json()}


def verify_release(
    store: Store,
    app: str,
    version: str,
    trusted: TrustedKeys,
    *,
    function: str | None = None,
    reporter: Reporter | None = None,
) -> VerifyReport:
    """Check release `app@version` (or one function of it); raise ReleaseVerificationFailed on any failure."""
    if not trusted:
        raise ConfigError("no [[registry.trusted_keys]] in the config: nothing to verify against",
                          hint="Pin the publisher's public key (printed by `relay keygen`).")
    parse_version(version)
    reporter = reporter or SilentReporter()
    checker = _Checker(store, app, version, trusted, reporter)
    report = VerifyReport(app, version, checker.run(function))
    if not report.ok:
        raise ReleaseVerificationFailed(report)
    return report


class _Checker:
    def __init__(self, store: Store, app: str, version: str, trusted: TrustedKeys, reporter: Reporter) -> None:
        self.store = store
        self.layout = store.layout
        self.app = app
        self.version = version
        self.trusted = trusted
        self.reporter = reporter
        self.release_statement: stmt.StatementView | None = None  # set once the release envelope verified
        self.release_signer = ""

    def run(self, function: str | None) -> list[Check]:
        key = self.layout.release(self.app, self.version)
        stored = self.store.read_optional(key)
        if stored is None:
            raise NotFound(f"{self.app}@{self.version} is not published ({key} does not exist)")
        checks: list[Check] = []
        subject = f"release {self.app}@{self.version}"
        release = _record(checks, subject, "document", lambda: self._release_document(stored.body))
        if release is None:
            return checks
        _record(checks, subject, "signature", lambda: self._release_envelope(release, stored.body, key))
        functions, layers = self._selected(release, function)
        with ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="relay-verify") as pool:
            results = pool.map(lambda entry: self._bundle(release, entry), [*layers, *functions])
            for found in results:
                checks.extend(found)
        return checks

    # -- the release ----------------------------------------------------------------------------

    def _release_document(self, body: bytes) -> tuple[Release, str]:
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise VerificationFailed(f"not JSON ({exc})") from None
        problems = schemas.errors("release", doc)
        if problems:
            raise VerificationFailed(f"not a valid release document: {schemas.key_path(problems[0])}: {problems[0].message}")
        release = parse_release(body, what="the document")
        if (release.app, release.version) != (self.app, self.version):
            raise VerificationFailed(f"the document is for {release.app}@{release.version}")
        return release, f"{len(release.functions)} function(s), {len(release.layers)} layer bundle(s)"

    def _release_envelope(self, release: Release, body: bytes, key: str) -> tuple[None, str]:
        what = envelope_key(key)
        keyid, statement = self._signed_statement(what)
        problems = []
        if statement.build_type != stmt.RELEASE_BUILD_TYPE:
            problems.append(f"build type {statement.build_type!r}")
        named = (statement.external.get("app"), statement.external.get("version"))
        if named != (self.app, self.version):
            problems.append(f"the signed statement is for {named[0]}@{named[1]}, not {self.app}@{self.version}")
        if statement.subjects != release.subjects():
            differing = _diff(statement.subjects, release.subjects())
            problems.append(f"signed subjects differ from the release's bundles ({differing})")
        if statement.byproduct(stmt.RELEASE_NAME) != _sha256(body):
            problems.append("the release document's digest is not the one signed (the document was changed)")
        if problems:
            raise VerificationFailed("; ".join(problems))
        self.release_statement, self.release_signer = statement, keyid
        bundles = len(release.subjects())
        names = [*(lay.bundle for lay in release.layers), *(f.bundle for f in release.functions)]
        vouched = sum(1 for name in names if statement.dependency(stmt.MANIFEST_DEPENDENCY + name))
        also = f"; vouches for {vouched} bundles' manifests and SBOMs" if vouched else ""
        return None, (f"signed by trusted {self.trusted.describe(keyid)}, names {self.app}@{self.version} "
                      f"and its {bundles} bundles{also}")

    def _selected(self, release: Release, function: str | None) -> tuple[list[ReleaseFunction], list[ReleaseLayer]]:
        if function is None:
            return list(release.functions), list(release.layers)
        entry = release.function(function)
        if entry is None:
            known = ", ".join(f.name for f in release.functions)
            raise NotFound(f"{self.app}@{self.version} has no function {function!r}", hint=f"It has: {known}.")
        return [entry], [lay for lay in release.layers if lay.bundle in entry.layers]

    # -- one bundle -----------------------------------------------------------------------------

    def _bundle(self, release: Release, entry: ReleaseFunction | ReleaseLayer) -> list[Check]:
        kind = "function" if isinstance(entry, ReleaseFunction) else "layer"
        subject = f"function {entry.name}" if kind == "function" else f"layer {entry.name} ({entry.architecture})"
        self.reporter.step(f"verifying {subject}")
        checks: list[Check] = []
        found = _record(checks, subject, "manifest", lambda: self._manifest(release, entry, kind))
        if found is None:
            return checks
        manifest, manifest_bytes, key = found
        _record(checks, subject, "signature", lambda: self._bundle_envelope(manifest, manifest_bytes, key))
        _record(checks, subject, "blob", lambda: self._blob(manifest))
        return checks

    def _manifest(self, release: Release, entry: ReleaseFunction | ReleaseLayer,
                  kind: str) -> tuple[tuple[Manifest, bytes, str], str]:
        expected = (self.layout.function_manifest(self.app, entry.name, self.version) if kind == "function"
                    else self.layout.layer_manifest(self.app, entry.name, entry.architecture, entry.sha256))
        key = self.layout.key(entry.manifest)
        if key != expected:
            raise VerificationFailed(f"the release points at {entry.manifest}, expected {self.layout.relative(expected)}")
        stored = self.store.read_optional(key)
        if stored is None:
            raise VerificationFailed(f"{key} is missing")
        manifest = parse_manifest(key, stored.body)
        mismatches = _manifest_mismatches(manifest, entry, release, kind, self.version)
        if mismatches:
            raise VerificationFailed(f"manifest disagrees with the release: {'; '.join(mismatches)}")
        return (manifest, stored.body, key), "matches the release entry"

    def _bundle_envelope(self, manifest: Manifest, manifest_bytes: bytes, key: str) -> tuple[None, str]:
        try:
            keyid, statement = self._signed_statement(envelope_key(key))
        except UntrustedSigner as exc:
            if manifest.kind != "layer":
                raise
            return self._vouched(manifest, manifest_bytes, key, exc)
        problems = []
        subject = zip_name(manifest.bundle_name)
        if statement.subjects != {subject: manifest.sha256}:
            problems.append(f"signed subjects {_diff(statement.subjects, {subject: manifest.sha256})}")
        expected = {"app": self.app, "kind": manifest.kind, "name": manifest.name}
        if manifest.kind == "function":
            expected["version"] = self.version
        named = {k: statement.external.get(k) for k in expected}
        if named != expected:
            problems.append(f"the signed statement names {_describe(named)}, not {_describe(expected)}")
        internal = (statement.internal.get("runtime"), statement.internal.get("architecture"))
        if internal != (manifest.runtime, manifest.architecture):
            problems.append(f"signed runtime/architecture {internal} differ from the manifest's")
        if statement.byproduct(stmt.MANIFEST_NAME) != _sha256(manifest_bytes):
            problems.append("the manifest's digest is not the one signed (the manifest was changed)")
        sbom = self.store.read_optional(sbom_key(key))
        if sbom is None:
            problems.append(f"{sbom_key(key)} is missing")
        elif statement.byproduct(stmt.SBOM_NAME) != _sha256(sbom.body):
            problems.append("the SBOM's digest is not the one signed (the SBOM was changed)")
        if problems:
            raise VerificationFailed("; ".join(problems))
        return None, f"signed by trusted {self.trusted.describe(keyid)}; manifest and SBOM digests match"

    def _vouched(self, manifest: Manifest, manifest_bytes: bytes, key: str, untrusted: UntrustedSigner) -> tuple[None, str]:
        """A layer whose own envelope is by a key no longer trusted passes when the verified release vouches for it.

        A layer manifest is shared by every release holding the same bytes and
        keeps the envelope of the release that first stored it; after a key
        rotation the current release's statement (signed by a trusted key)
        names the exact digests of that manifest and its SBOM.
        """
        statement, name = self.release_statement, manifest.bundle_name
        signer = f"its envelope is by {', '.join(k[:16] for k in untrusted.keyids)}, not trusted"
        if statement is None:
            raise VerificationFailed(f"{signer}, and the release's statement did not verify")
        vouched = statement.dependency(stmt.MANIFEST_DEPENDENCY + name)
        if vouched is None:
            raise VerificationFailed(f"{signer}, and the release's statement does not vouch for it "
                                     "(a release published before relay signed its manifests' digests)")
        if vouched != _sha256(manifest_bytes):
            raise VerificationFailed(f"{signer}, and the manifest's digest is not the one the release signed")
        sbom = self.store.read_optional(sbom_key(key))
        if sbom is None:
            raise VerificationFailed(f"{signer}, and {sbom_key(key)} is missing")
        if statement.dependency(stmt.SBOM_DEPENDENCY + name) != _sha256(sbom.body):
            raise VerificationFailed(f"{signer}, and the SBOM's digest is not the one the release signed")
        return None, (f"{signer}; manifest and SBOM digests vouched for by the release, signed by trusted "
                      f"{self.trusted.describe(self.release_signer)}")

    def _blob(self, manifest: Manifest) -> tuple[None, str]:
        key = self.layout.blob(manifest.sha256)
        if self.store.head(key) is None:
            raise VerificationFailed(f"{key} is missing")
        digest, size = hashlib.sha256(), 0
        for chunk in self.store.iter_chunks(key):
            digest.update(chunk)
            size += len(chunk)
        if digest.hexdigest() != manifest.sha256:
            raise VerificationFailed(f"{key}: bytes hash to {digest.hexdigest()[:16]}, the manifest says {manifest.sha256[:16]}")
        if size != manifest.zipped_size:
            raise VerificationFailed(f"{key}: {size} bytes, the manifest says {manifest.zipped_size}")
        return None, f"sha256 {manifest.sha256[:16]} ({human_size(size)})"

    # -- shared -----------------------------------------------------------------------------------

    def _signed_statement(self, key: str) -> tuple[str, stmt.StatementView]:
        stored = self.store.read_optional(key)
        if stored is None:
            raise VerificationFailed(f"{key} is missing")
        envelope = Envelope.from_bytes(stored.body, what=key)
        keyid = verify_envelope(envelope, self.trusted, what=key)
        return keyid, stmt.StatementView.parse(envelope.payload, what=key)


def parse_manifest(key: str, body: bytes) -> Manifest:
    """A stored manifest, which must be JSON valid against schemas/manifest.schema.json."""
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise VerificationFailed(f"{key}: not JSON ({exc})") from None
    problems = schemas.errors("manifest", doc)
    if problems:
        raise VerificationFailed(f"{key}: {schemas.key_path(problems[0])}: {problems[0].message}")
    return Manifest.from_json(doc, what=key)


def _manifest_mismatches(manifest: Manifest, entry: ReleaseFunction | ReleaseLayer, release: Release,
                         kind: str, version: str) -> list[str]:
    expected = {
        "app": release.app, "kind": kind, "name": entry.name, "runtime": release.runtime,
        "architecture": entry.architecture, "sha256": entry.sha256, "code_sha256": entry.code_sha256,
        "content_digest": entry.content_digest, "version": version if kind == "function" else None,
    }
    if isinstance(entry, ReleaseFunction):
        expected["handler"] = entry.handler
    found = [f"{field} is {getattr(manifest, field)!r}, the release says {value!r}"
             for field, value in expected.items() if getattr(manifest, field) != value]
    if isinstance(entry, ReleaseFunction):
        layers = {lay.bundle: lay for lay in release.layers}
        refs = [(bundle_name("layer", ref.name, manifest.architecture), ref.sha256) for ref in manifest.layers]
        if [bundle for bundle, _ in refs] != list(entry.layers):
            found.append(f"layers {[b for b, _ in refs]}, the release says {list(entry.layers)}")
        for bundle, sha in refs:
            if bundle in layers and layers[bundle].sha256 != sha:
                found.append(f"needs {bundle} {sha[:12]}, the release pins {layers[bundle].sha256[:12]}")
    return found


def _record(checks: list[Check], subject: str, what: str, run: Callable[[], tuple[T, str]]) -> T | None:
    """Run one check; record it as passed (with its detail) or failed (with the reason)."""
    try:
        value, detail = run()
    except (VerificationFailed, NotFound) as exc:
        checks.append(Check(subject, what, False, exc.message))
        return None
    checks.append(Check(subject, what, True, detail))
    return value


def _diff(signed: dict[str, str], actual: dict[str, str]) -> str:
    parts = []
    for name in sorted(set(signed) | set(actual)):
        if signed.get(name) != actual.get(name):
            s, a = signed.get(name), actual.get(name)
            parts.append(f"{name}: signed {s[:12] if s else 'absent'}, stored {a[:12] if a else 'absent'}")
    return ", ".join(parts)


def _describe(named: dict) -> str:
    text = f"{named.get('kind')} {named.get('app')}/{named.get('name')}"
    return f"{text}@{named['version']}" if named.get("version") else text


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
