"""Digests that identify bundles and trees of files.

`tree_digest` is the one place a set of files becomes one hash: the manifest's
content digest and the source-tree hashes both use it, so it must depend only
on paths, modes and file contents (never mtimes, umask or directory order).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

from builder.errors import BuildFailed

_HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def code_sha256(hex_digest: str) -> str:
    """Lambda's `CodeSha256`: base64 of the raw digest, not of the hex string."""
    if not _HEX_SHA256.match(hex_digest):
        raise ValueError(f"not a lowercase hex sha256: {hex_digest!r}")
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def tree_digest(items: Iterable[tuple[str, int, str]]) -> str:
    """Hex sha256 over (path, mode, sha256-hex) triples, in UTF-8 byte order of path.

    Each entry is encoded as one line `"<mode octal> <sha256> <path>\\n"`. The
    first two fields have a fixed alphabet and no spaces, and the path cannot
    hold a newline, so the encoding is unambiguous.
    """
    lines = sorted((_line(path, mode, sha) for path, mode, sha in items), key=lambda pair: pair[0])
    digest = hashlib.sha256()
    previous: bytes | None = None
    for key, line in lines:
        if key == previous:
            raise BuildFailed("digest", f"{key.decode('utf-8')} is listed twice", hint="Each path may appear once.")
        previous = key
        digest.update(line)
    return digest.hexdigest()


def _line(path: str, mode: int, sha: str) -> tuple[bytes, bytes]:
    if not path or "\n" in path:
        raise BuildFailed(
            "digest",
            f"{path!r} cannot be hashed: empty, or holds a newline",
            hint="Rename the file; file names with newlines are not supported.",
        )
    if not isinstance(mode, int) or isinstance(mode, bool) or mode < 0:
        raise ValueError(f"mode for {path!r} must be a non-negative int, got {mode!r}")
    if not _HEX_SHA256.match(sha):
        raise ValueError(f"sha256 for {path!r} must be lowercase hex, got {sha!r}")
    try:
        key = path.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BuildFailed(
            "digest",
            f"{path!r} is not valid UTF-8",
            hint="Rename the file to a UTF-8 name.",
        ) from exc
    return key, f"{mode:o} {sha} ".encode("ascii") + key + b"\n"
