"""KMS asymmetric signing keys, in typed methods."""

from __future__ import annotations

from builder.aws.errors import aws_call
from builder.aws.session import AwsSession

# KMS signs at most this many bytes with MessageType=RAW; larger messages are sent as a digest.
RAW_MESSAGE_MAX = 4096


class Kms:
    def __init__(self, session: AwsSession) -> None:
        self.session = session
        self._client = session.client("kms")

    def where(self, key_id: str) -> str:
        return f"kms key {key_id} ({self.session.label})"

    def sign(self, key_id: str, message: bytes, *, message_type: str = "RAW", algorithm: str = "ECDSA_SHA_256") -> bytes:
        """The DER signature of `message` (RAW) or of a precomputed digest (DIGEST)."""
        with aws_call("kms:Sign", self.where(key_id)):
            reply = self._client.sign(KeyId=key_id, Message=message, MessageType=message_type, SigningAlgorithm=algorithm)
        return reply["Signature"]

    def public_key_der(self, key_id: str) -> bytes:
        """The key's public half as DER SubjectPublicKeyInfo."""
        with aws_call("kms:GetPublicKey", self.where(key_id)):
            return self._client.get_public_key(KeyId=key_id)["PublicKey"]

    def create_signing_key(self, description: str = "relay signing key") -> str:
        """A new ECC_NIST_P256 SIGN_VERIFY key (for demos and tests); returns its key id."""
        with aws_call("kms:CreateKey", f"kms ({self.session.label})"):
            reply = self._client.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY", Description=description)
        return reply["KeyMetadata"]["KeyId"]
