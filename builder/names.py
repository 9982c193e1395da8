"""The one check of a name that becomes part of a path or a registry key.

App, function, layer and package names, environment names, architectures:
relay.toml's schema allows only these characters, and every reader of stored
state (dist/ manifests and index, release documents, registry keys, the ledger)
checks them again here, so a name such as `../../..` in a document someone
edited never reaches a path or a key.
"""

from __future__ import annotations

import re

from builder.errors import RelayError, VerificationFailed

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# Semantic versions (with prerelease and build metadata): no "/", no "..", no NUL.
SAFE_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+-]{0,127}$")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def shown(value: object) -> str:
    """A value as it may be printed: escaped, never longer than 80 characters."""
    text = ascii(value) if isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_name(value: object, what: str, *, error: type[RelayError] = VerificationFailed) -> str:
    """`value` when it is a safe name, else `error` naming `what` (e.g. "dist/orders.manifest.json: layers[0].name")."""
    if isinstance(value, str) and SAFE_NAME.fullmatch(value):
        return value
    raise error(f"{what}: {shown(value)} is not a safe name (letters, digits, '-' and '_', at most 64, "
                "starting with a letter or digit)",
                hint="Names become file names and registry keys: no path separators, no '..'. "
                     "Check who wrote this document.")


def check_version(value: object, what: str, *, error: type[RelayError] = VerificationFailed) -> str:
    if isinstance(value, str) and SAFE_VERSION.fullmatch(value) and ".." not in value:
        return value
    raise error(f"{what}: {shown(value)} is not a version", hint="A version is semver, such as 1.2.3.")


def check_digest(value: object, what: str, *, error: type[RelayError] = VerificationFailed) -> str:
    if isinstance(value, str) and SHA256_HEX.fullmatch(value):
        return value
    raise error(f"{what}: {shown(value)} is not a sha256 digest", hint="Check who wrote this document.")
