"""Digests: file hashes, Lambda's CodeSha256, and the tree digest's encoding."""

from __future__ import annotations

import hashlib

import pytest

from builder.bundle.digest import code_sha256, sha256_file, tree_digest
from builder.errors import BuildFailed

EMPTY = hashlib.sha256(b"").hexdigest()
A = hashlib.sha256(b"a").hexdigest()
B = hashlib.sha256(b"b").hexdigest()


def test_sha256_file(tmp_path):
    content = bytes(range(256)) * 10_000  # bigger than one read chunk
    (tmp_path / "f").write_bytes(content)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(content).hexdigest()


def test_code_sha256_is_base64_of_raw_digest():
    # Known value: Lambda reports this CodeSha256 for an empty payload's digest.
    assert code_sha256(EMPTY) == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


@pytest.mark.parametrize("bad", ["", "abc", EMPTY.upper(), EMPTY + "00", "g" * 64])
def test_code_sha256_rejects_non_hex(bad):
    with pytest.raises(ValueError):
        code_sha256(bad)


def test_tree_digest_encoding_is_documented_lines():
    items = [("pkg/b.py", 0o755, B), ("a.py", 0o644, A)]
    expected = hashlib.sha256(f"644 {A} a.py\n755 {B} pkg/b.py\n".encode()).hexdigest()
    assert tree_digest(items) == expected


def test_tree_digest_of_nothing():
    assert tree_digest([]) == EMPTY


def test_tree_digest_ignores_input_order():
    items = [("a.py", 0o644, A), ("b/c.py", 0o644, B), ("\u00e9.txt", 0o644, A), ("Z.py", 0o755, B)]
    assert tree_digest(items) == tree_digest(reversed(items)) == tree_digest(sorted(items))


def test_tree_digest_sorts_by_utf8_bytes():
    # "Z" (0x5a) < "a" (0x61) < "é" (0xc3 0xa9): byte order, not locale or case-folded order.
    items = [("\u00e9", 0o644, A), ("a", 0o644, A), ("Z", 0o644, A)]
    expected = hashlib.sha256(f"644 {A} Z\n644 {A} a\n644 {A} \u00e9\n".encode()).hexdigest()
    assert tree_digest(items) == expected


@pytest.mark.parametrize(
    "changed",
    [
        [("a.py", 0o755, A)],  # mode
        [("a.py", 0o644, B)],  # content
        [("b.py", 0o644, A)],  # path
        [("a.py", 0o644, A), ("b.py", 0o644, A)],  # one more file
    ],
)
def test_tree_digest_sees_every_field(changed):
    assert tree_digest(changed) != tree_digest([("a.py", 0o644, A)])


def test_tree_digest_refuses_a_newline_in_a_path():
    # Otherwise ("x\n644 <sha> y", ...) could forge a second entry.
    with pytest.raises(BuildFailed, match="newline"):
        tree_digest([(f"x\n644 {A} y", 0o644, A)])


def test_tree_digest_refuses_duplicates():
    with pytest.raises(BuildFailed, match="a.py is listed twice"):
        tree_digest([("a.py", 0o644, A), ("a.py", 0o755, B)])


@pytest.mark.parametrize("item", [("", 0o644, A), ("a", -1, A), ("a", 0o644, "xyz"), ("a", "644", A)])
def test_tree_digest_refuses_malformed_items(item):
    with pytest.raises((BuildFailed, ValueError)):
        tree_digest([item])
