"""Semantic versions: parsing, bumping, and an S3 key order that is semver precedence.

Versions are semver 2.0 (the `semver` package). `--bump` follows npm and
semver's `next_version`: bumping a prerelease releases it when the part being
bumped is the one the prerelease leads to (2.4.0-rc.1 + patch -> 2.4.0, + minor
-> 2.4.0, + major -> 3.0.0; 2.4.1-rc.1 + minor -> 2.5.0), otherwise the part
is incremented. Build metadata does not take part in precedence, so two
versions that differ only in it cannot both be published.

`order_key` maps a version to a string whose ascending byte order is the
*descending* precedence order. S3 lists keys in ascending order, so the first
key under the index prefix is the newest version: finding the latest costs
one LIST request however many versions there are.
"""

from __future__ import annotations

import semver

from builder.errors import UsageError

BUMP_PARTS = ("major", "minor", "patch")

# Byte codes of the ascending encoding; see `_ascending`.
_RELEASE = 0xF0  # after the triple: no prerelease, sorts above any prerelease
_PRERELEASE = 0x80  # after the triple: a prerelease follows
_NUMERIC_ID = 0x10
_ALNUM_ID = 0x20
_ALNUM_END = 0x00  # ends an alphanumeric identifier: "a" < "ab"
_PRERELEASE_END = 0x01  # ends the identifiers: fewer identifiers sort lower


def parse_version(text: str) -> semver.Version:
    """A semver 2.0 version; a clear UsageError for anything else."""
    try:
        return semver.Version.parse(text.strip())
    except (ValueError, TypeError):
        pass
    hint = "Use MAJOR.MINOR.PATCH, optionally -PRERELEASE and +BUILD (semver 2.0), e.g. 2.3.0 or 2.4.0-rc.1."
    if text.strip().lower().startswith("v"):
        hint = f"Drop the leading 'v': {text.strip()[1:]}."
    raise UsageError(f"{text!r} is not a semantic version", hint=hint)


def bump(latest: semver.Version | None, part: str) -> semver.Version:
    """The next version after `latest` (0.0.0 when nothing is published yet)."""
    if part not in BUMP_PARTS:
        raise UsageError(f"cannot bump {part!r}", hint=f"Bump one of: {', '.join(BUMP_PARTS)}.")
    base = (latest or semver.Version(0, 0, 0)).replace(build=None)
    return base.next_version(part)


def order_key(version: semver.Version) -> str:
    """Hex text whose ascending order is descending semver precedence (build metadata ignored)."""
    return bytes(0xFF - b for b in _ascending(version)).hex()


def _ascending(version: semver.Version) -> bytes:
    # Each part is self-delimiting, so no encoding is a prefix of another; that is what
    # lets the complement in `order_key` reverse the order exactly.
    out = bytearray()
    for number in (version.major, version.minor, version.patch):
        out += _number(number)
    if not version.prerelease:
        out.append(_RELEASE)
        return bytes(out)
    out.append(_PRERELEASE)
    for ident in version.prerelease.split("."):
        if ident.isdigit():
            out.append(_NUMERIC_ID)
            out += _number(int(ident))
        else:
            out.append(_ALNUM_ID)
            out += ident.encode("ascii") + bytes([_ALNUM_END])
    out.append(_PRERELEASE_END)
    return bytes(out)


def _number(value: int) -> bytes:
    # Length first: a longer decimal is a larger number (semver forbids leading zeros).
    digits = str(value).encode("ascii")
    if len(digits) > 0xFF:
        raise UsageError(f"version number {value} is too long")
    return bytes([len(digits)]) + digits
