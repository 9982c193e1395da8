"""The pieces behind the exit code table that a real run reaches only on another machine.

A PermissionError or a full disk cannot be made here (the tests run as root,
on a disk with room), so the translation of OS errors is checked on the
errors Python raises for them; Ctrl-C is recognised through the chain of
errors an apply raises while it puts the aliases back.
"""

from __future__ import annotations

import errno
import os

import pytest

from builder.errors import BuildFailed, Interrupted, NotFound, RelayError, UnknownName, UsageError, interrupted, os_error


def test_an_unwritable_dist_is_a_failed_build_naming_the_path() -> None:
    exc = PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/workspace/dist")

    error = os_error(exc, kind=BuildFailed)

    assert error.exit_code == 4
    assert "/workspace/dist" in error.message and "Permission denied" in error.message
    assert "owner" in error.hint  # the container uid story: who owns the mounted folder


def test_a_full_disk_outside_the_named_cases_keeps_exit_1_but_names_the_path() -> None:
    exc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/home/me/.cache/relay/blobs/x")

    error = os_error(exc)

    assert error.exit_code == 1
    assert error.message == "cannot use /home/me/.cache/relay/blobs/x: No space left on device"
    assert "bug" not in error.message + error.hint


def test_a_rename_names_both_paths() -> None:
    exc = OSError(errno.EROFS, os.strerror(errno.EROFS), "dist/.tmp-1", None, "dist/orders.zip")

    assert os_error(exc, kind=UsageError).message == "cannot use dist/.tmp-1 -> dist/orders.zip: Read-only file system"


def test_ctrl_c_is_found_behind_the_error_the_clean_up_raised() -> None:
    try:
        try:
            raise KeyboardInterrupt
        except BaseException as exc:
            raise RelayError("promote of shop in staging failed while moving aliases; aliases moved back: orders") from exc
    except RelayError as wrapped:
        assert interrupted(wrapped)
    assert not interrupted(RelayError("gates refused"))
    assert Interrupted.exit_code == 130


@pytest.mark.parametrize(("kind", "names", "message"), [
    ("environment", ["qa"], "relay.toml: no environment named 'qa'"),
    ("function or layer", ["a", "b"], "relay.toml: no function or layer named 'a', 'b'"),
])
def test_unknown_names_are_not_found(kind: str, names: list[str], message: str) -> None:
    error = UnknownName(kind, names, ["staging", "prod"], config="relay.toml")

    assert isinstance(error, NotFound) and error.exit_code == 12
    assert error.message == message
    assert error.hint.endswith(": prod, staging.")
