"""Moved to `builder.lock.lockfile`; kept importable until its last callers switch.

Callers left (not owned by the build/lock area): `builder/scaffold.py`,
`tests/local/test_scaffold.py`.
"""

from builder.lock.lockfile import LockFile, LockHeader, input_sha256, lock_path_for, read_lock, with_header

__all__ = ["LockFile", "LockHeader", "input_sha256", "lock_path_for", "read_lock", "with_header"]
