"""DSSE envelopes: sign with an Ed25519 key file or an AWS KMS key; verify offline.

An envelope is `{"payloadType", "payload" (base64), "signatures": [{"keyid", "sig"}]}`
and each signature is over PAE(payloadType, payload) (the DSSE v1 "pre-auth
encoding"), so a signature cannot be moved to another payload type. A keyid
is the sha256 (hex) of the public key's DER SubjectPublicKeyInfo, whatever
the key kind, so the config can pin keys of both kinds the same way.

Verification needs only the public keys pinned in relay.toml (`trusted_keys`):
a target account never needs the signing key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Protocol

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from builder.aws.kms import RAW_MESSAGE_MAX, Kms
from builder.config import TrustedKey
from builder.errors import ConfigError, UsageError, VerificationFailed
from builder.frozen import to_tuple

PAYLOAD_TYPE = "application/vnd.in-toto+json"
SIGNING_KEY_ENV = "RELAY_SIGNING_KEY"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what is actually signed."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def keyid_of(public_key: ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


@attrs.frozen
class Signature:
    keyid: str
    sig: bytes


@attrs.frozen
class Envelope:
    payload: bytes
    signatures: tuple[Signature, ...] = attrs.field(converter=to_tuple)
    payload_type: str = PAYLOAD_TYPE

    def to_json(self) -> dict:
        return {
            "payloadType": self.payload_type,
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "signatures": [{"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")} for s in self.signatures],
        }

    def to_bytes(self) -> bytes:
        return (json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes, *, what: str) -> Envelope:
        """Parse an envelope; VerificationFailed naming `what` when it is not one."""
        try:
            doc = json.loads(data)
            return cls(
                payload=base64.b64decode(doc["payload"], validate=True),
                payload_type=doc["payloadType"],
                signatures=tuple(
                    Signature(keyid=str(s["keyid"]), sig=base64.b64decode(s["sig"], validate=True))
                    for s in doc["signatures"]
                ),
            )
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise VerificationFailed(f"{what}: not a DSSE envelope ({type(exc).__name__}: {exc})") from None


class Signer(Protocol):
    @property
    def keyid(self) -> str: ...

    def sign(self, message: bytes) -> bytes:
        """A signature over `message` (the PAE)."""


class Ed25519Signer:
    """A local Ed25519 private key (a file, or a CI secret in RELAY_SIGNING_KEY)."""

    def __init__(self, private_key: ed25519.Ed25519PrivateKey) -> None:
        self._key = private_key
        self.keyid = keyid_of(private_key.public_key())

    @classmethod
    def from_pem(cls, pem: bytes, *, source: str) -> Ed25519Signer:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"signing key {source}: not an unencrypted PEM private key ({exc})",
                              hint="Create one with `relay keygen --out PATH`.") from None
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise ConfigError(f"signing key {source}: not an Ed25519 key", hint="Create one with `relay keygen --out PATH`.")
        return cls(key)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


class KmsSigner:
    """An AWS KMS asymmetric key (ECC_NIST_P256, ECDSA_SHA_256): the private half never leaves KMS.

    KMS signs at most 4096 bytes with MessageType=RAW. A larger PAE is hashed
    here and sent with MessageType=DIGEST, which real KMS turns into the very
    same ECDSA-SHA256 signature. (moto hashes a DIGEST message again, so its
    DIGEST signatures do not verify; keep statements small when testing on moto.)
    """

    def __init__(self, kms: Kms, key_id: str) -> None:
        self._kms = kms
        self.key_id = key_id
        self._keyid: str | None = None

    @property
    def keyid(self) -> str:
        if self._keyid is None:
            public = serialization.load_der_public_key(self._kms.public_key_der(self.key_id))
            self._keyid = keyid_of(public)  # type: ignore[arg-type]
        return self._keyid

    def sign(self, message: bytes) -> bytes:
        if len(message) <= RAW_MESSAGE_MAX:
            return self._kms.sign(self.key_id, message, message_type="RAW")
        return self._kms.sign(self.key_id, hashlib.sha256(message).digest(), message_type="DIGEST")


def sign_envelope(payload: bytes, signer: Signer) -> Envelope:
    return Envelope(payload=payload, signatures=(Signature(signer.keyid, signer.sign(pae(PAYLOAD_TYPE, payload))),))


# -- trusted keys and verification --------------------------------------------------------------


@attrs.frozen
class TrustedKeys:
    """Public keys pinned in the config, by keyid, with what the config says of each (note, retired).

    A retired key still verifies what it signed; it never signs anything new
    (see `refuse_retired`).
    """

    keys: dict[str, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey]
    entries: dict[str, TrustedKey] = attrs.field(factory=dict)

    @classmethod
    def from_config(cls, trusted: tuple[TrustedKey, ...]) -> TrustedKeys:
        keys = {}
        entries = {}
        for entry in trusted:
            public = load_public_key(entry.public_key, source=f"trusted key {entry.keyid[:16]}")
            actual = keyid_of(public)
            if actual != entry.keyid:
                raise ConfigError(
                    f"trusted key {entry.keyid!r}: its public key has keyid {actual}",
                    hint="Copy keyid and public_key together from `relay keygen` (or the KMS key's public key).",
                )
            keys[actual] = public
            entries[actual] = entry
        return cls(keys, entries)

    def __bool__(self) -> bool:
        return bool(self.keys)

    def describe(self, keyid: str) -> str:
        """`key 1a2b3c4d5e6f7a8b ("note", retired)`: how reports name a key."""
        entry = self.entries.get(keyid)
        marks = [f'"{entry.note}"'] if entry is not None and entry.note else []
        if entry is not None and entry.retired:
            marks.append("retired")
        return f"key {keyid[:16]}" + (f" ({', '.join(marks)})" if marks else "")


class UntrustedSigner(VerificationFailed):
    """Every signature of an envelope is by a key the config does not trust (any more)."""

    def __init__(self, message: str, keyids: tuple[str, ...]) -> None:
        super().__init__(message)
        self.keyids = keyids


class UntrustedSigningKey(ConfigError):
    """The key about to sign is not one the config trusts: what it signed would never verify."""

    hint = ("Add the key's [[registry.trusted_keys]] entry to relay.toml (`relay keygen` prints it), "
            "or sign with a key that is there. Nothing was written.")


def refuse_untrusted(trusted: TrustedKeys, keyid: str, *, config: str = "relay.toml") -> None:
    """UntrustedSigningKey when `keyid` is not among the trusted keys: checked before anything is signed or written.

    A release signed by a key nobody trusts would take its version for good and
    be refused by every `verify` and `promote`; refusing up front burns nothing.
    """
    if keyid not in trusted.keys:
        raise UntrustedSigningKey(f"the signing key {keyid[:16]} is not in [[registry.trusted_keys]] of {config}: "
                                  "what it signs would not verify")


def refuse_retired(trusted: tuple[TrustedKey, ...], keyid: str) -> None:
    """ConfigError when `keyid` is pinned as retired: a retired key verifies old releases, never signs new ones."""
    for entry in trusted:
        if entry.keyid == keyid and entry.retired:
            raise ConfigError(f"the signing key {keyid[:16]} is marked retired in [[registry.trusted_keys]]",
                              hint="Sign with the current key (relay keygen makes one); keep the retired entry so "
                                   "older releases still verify.")


def load_public_key(pem: str | bytes, *, source: str) -> ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey:
    data = _ascii(pem, source) if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{source}: not a PEM public key ({exc})") from None
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise ConfigError(f"{source}: unsupported key type {type(key).__name__}",
                      hint="relay verifies Ed25519 keys and ECDSA P-256 (KMS ECC_NIST_P256) keys.")


def verify_envelope(envelope: Envelope, trusted: TrustedKeys, *, what: str) -> str:
    """The keyid of a valid signature by a trusted key over the envelope; VerificationFailed if none."""
    if envelope.payload_type != PAYLOAD_TYPE:
        raise VerificationFailed(f"{what}: payload type {envelope.payload_type!r}, expected {PAYLOAD_TYPE}")
    if not envelope.signatures:
        raise VerificationFailed(f"{what}: envelope has no signature")
    message = pae(envelope.payload_type, envelope.payload)
    problems = []
    untrusted = []
    for signature in envelope.signatures:
        key = trusted.keys.get(signature.keyid)
        if key is None:
            problems.append(f"signed by untrusted key {signature.keyid[:16]}")
            untrusted.append(signature.keyid)
        elif signature_valid(key, signature.sig, message):
            return signature.keyid
        else:
            problems.append(f"bad signature for trusted key {signature.keyid[:16]}")
    text = f"{what}: no valid signature by a trusted key ({'; '.join(problems)})"
    if len(untrusted) == len(envelope.signatures):
        raise UntrustedSigner(text, tuple(untrusted))
    raise VerificationFailed(text)


def signature_valid(key: ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey, sig: bytes, message: bytes) -> bool:
    """One signature over `message` by `key` (Ed25519, or ECDSA P-256 with SHA-256 as KMS signs)."""
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(sig, message)
        else:
            key.verify(sig, message, ec.ECDSA(hashes.SHA256()))
        return True
    except InvalidSignature:
        return False


# -- keys on disk ---------------------------------------------------------------------------------


@attrs.frozen
class GeneratedKey:
    private_path: Path
    public_path: Path
    keyid: str
    public_pem: str
    # How relay.toml names the public key file (relative to relay.toml's folder); default: its file name.
    public_key_ref: str = ""
    gitignored: bool = False  # a .gitignore covers the private key file (see `gitignore_covers`)

    def toml_snippet(self, public_key_ref: str | None = None) -> str:
        """The `[[registry.trusted_keys]]` entry to paste into relay.toml."""
        ref = public_key_ref or self.public_key_ref or self.public_path.name
        return f'[[registry.trusted_keys]]\nkeyid = "{self.keyid}"\npublic_key = "{ref}"\n'

    def to_json(self) -> dict:
        return {
            "private_key": str(self.private_path),
            "public_key": str(self.public_path),
            "keyid": self.keyid,
            "public_key_pem": self.public_pem,
            "trusted_keys_toml": self.toml_snippet(),
            "gitignored": self.gitignored,
        }


def generate_key_file(out: Path, *, force: bool = False) -> GeneratedKey:
    """A new Ed25519 key: private PEM at `out` (mode 0600) and public PEM at `out.pub`."""
    public_path = out.with_name(out.name + ".pub")
    for path in (out, public_path):
        if path.exists() and not force:
            raise UsageError(f"{path} exists", hint="Choose another --out, or pass --force to replace it.")
    key = ed25519.Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _write_private(out, private_pem)
        public_path.write_bytes(public_pem)
    except OSError as exc:
        raise UsageError(f"cannot write the key to {exc.filename or out}: {exc.strerror or exc}",
                         hint="Choose a writable --out path.") from None
    return GeneratedKey(out, public_path, keyid_of(key.public_key()), public_pem.decode("ascii"),
                        gitignored=gitignore_covers(out))


def gitignore_covers(path: Path) -> bool:
    """Whether a .gitignore in `path`'s folder or above (up to the git work tree's top) ignores `path`.

    Read with git's own rules (pathspec), without git: a freshly scaffolded
    project is often not a repository yet, and its key must be covered before
    the first `git add .`. The deepest .gitignore with a rule for the path decides.
    """
    from pathspec import GitIgnoreSpec

    path = Path(os.path.abspath(path))
    for folder in path.parents:
        rules = folder / ".gitignore"
        if rules.is_file():
            try:
                spec = GitIgnoreSpec.from_lines(rules.read_text(encoding="utf-8", errors="replace").splitlines())
            except ValueError:  # a line pathspec cannot read: git would skip it, we cannot tell
                spec = None
            decision = spec.check_file(path.relative_to(folder).as_posix()).include if spec is not None else None
            if decision is not None:
                return decision
        if (folder / ".git").exists():
            return False
    return False


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600 from the start: the key is never readable by others, not even briefly.
    staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    try:
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.chmod(staged, stat.S_IRUSR | stat.S_IWUSR)
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)


def signing_key_from_env(environ: dict[str, str] | os._Environ) -> Ed25519Signer | None:
    """RELAY_SIGNING_KEY holding a PEM private key, or a path to one."""
    value = environ.get(SIGNING_KEY_ENV, "").strip()
    if not value:
        return None
    if "-----BEGIN" in value:
        return Ed25519Signer.from_pem(_ascii(value, SIGNING_KEY_ENV), source=SIGNING_KEY_ENV)
    # Never echo the value: a key body pasted without its PEM header is a secret, not a path.
    path = Path(value).expanduser() if "\n" not in value and "\0" not in value and len(value) < 4096 else None
    if path is None or not path.is_file():
        raise ConfigError(f"{SIGNING_KEY_ENV} is neither a PEM private key (no -----BEGIN line) nor the path of a "
                          f"key file ({len(value)} characters, not shown: it may be a secret)",
                          hint="Set it to the whole PEM text, header and footer lines included, or to a key file's path.")
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{SIGNING_KEY_ENV}: the key file cannot be read ({exc.strerror})",
                          hint="Check the file's permissions.") from None
    return Ed25519Signer.from_pem(pem, source=f"{SIGNING_KEY_ENV} (a file)")


def _ascii(text: str, source: str) -> bytes:
    """PEM text as bytes; ConfigError (without the text) when it holds non-ASCII characters."""
    try:
        return text.encode("ascii")
    except UnicodeEncodeError as exc:
        raise ConfigError(f"{source}: not a PEM key: a non-ASCII character at position {exc.start}",
                          hint="PEM keys are ASCII: copy the key again, header and footer lines included.") from None
