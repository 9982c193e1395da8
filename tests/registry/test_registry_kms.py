"""Signing with an AWS KMS key (moto), verified offline with the pinned public key."""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from builder.aws.kms import RAW_MESSAGE_MAX
from builder.registry.factory import open_signer, trusted_keys
from builder.registry.signing import KmsSigner, TrustedKeys, keyid_of, pae, sign_envelope, verify_envelope
from builder.registry.verify import verify_release

KMS_SIGNING = '\n[registry.signing]\nkind = "kms"\nkey_id = "{key_id}"\n'


def _kms_key(workspace) -> tuple[str, str, str]:
    kms = workspace.aws.client("registry", "kms")
    key_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    der = kms.get_public_key(KeyId=key_id)["PublicKey"]
    pem = serialization.load_der_public_key(der).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return key_id, hashlib.sha256(der).hexdigest(), pem


def test_publish_signed_with_kms_verifies_offline(workspace):
    key_id, keyid, pem = _kms_key(workspace)
    (workspace.root / "keys" / "relay.key.pub").write_text(pem)
    workspace.write_config(signing=KMS_SIGNING.format(key_id=key_id), keyid=keyid)

    workspace.publish("1.0.0")

    envelope = json.loads(workspace.get("relay/shop/releases/1.0.0.dsse.json"))
    assert envelope["signatures"][0]["keyid"] == keyid
    payload = base64.b64decode(envelope["payload"])
    assert len(pae(envelope["payloadType"], payload)) <= RAW_MESSAGE_MAX  # signed with MessageType=RAW
    # Offline: only cryptography and the pinned PEM, no AWS call.
    public = serialization.load_pem_public_key(pem.encode())
    public.verify(base64.b64decode(envelope["signatures"][0]["sig"]), pae(envelope["payloadType"], payload),
                  ec.ECDSA(hashes.SHA256()))
    assert verify_release(workspace.store(), "shop", "1.0.0", trusted_keys(workspace.project())).ok


def test_kms_signer_keyid_is_the_sha256_of_the_public_key_der(workspace):
    key_id, keyid, _ = _kms_key(workspace)
    workspace.write_config(signing=KMS_SIGNING.format(key_id=key_id))
    project = workspace.project()
    signer = open_signer(project, workspace.store())
    assert isinstance(signer, KmsSigner) and signer.keyid == keyid


class _RealKmsSemantics:
    """KMS as AWS documents it: RAW signs sha256(message); DIGEST signs the given digest."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.calls: list[str] = []

    def public_key_der(self, key_id: str) -> bytes:
        return self.private.public_key().public_bytes(serialization.Encoding.DER,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, key_id: str, message: bytes, *, message_type: str = "RAW", algorithm: str = "ECDSA_SHA_256") -> bytes:
        self.calls.append(message_type)
        assert len(message) <= RAW_MESSAGE_MAX
        if message_type == "DIGEST":
            return self.private.sign(message, ec.ECDSA(Prehashed(hashes.SHA256())))
        return self.private.sign(message, ec.ECDSA(hashes.SHA256()))


def test_a_statement_larger_than_kms_raw_limit_is_signed_as_a_digest_and_still_verifies():
    kms = _RealKmsSemantics()
    signer = KmsSigner(kms, "alias/relay")  # type: ignore[arg-type]
    trusted = TrustedKeys({keyid_of(kms.private.public_key()): kms.private.public_key()})

    small = sign_envelope(b"{}", signer)
    large = sign_envelope(json.dumps({"subject": ["x" * 64] * 200}).encode(), signer)

    assert kms.calls == ["RAW", "DIGEST"]
    assert verify_envelope(small, trusted, what="small") == signer.keyid
    assert verify_envelope(large, trusted, what="large") == signer.keyid
