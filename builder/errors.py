"""One error root. Every error a user can cause has an exit code and a hint.

`builder.cli.main` catches `RelayError` once; a traceback is shown only with
`--debug`. The exit codes are part of the CLI's contract (README, "Exit codes").
"""

from __future__ import annotations

from collections.abc import Iterable


class RelayError(Exception):
    """Root of every error relay reports to its user."""

    exit_code = 1
    hint = ""
    # True when the command already printed its own --json document: stdout holds one document.
    reported = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def to_json(self) -> dict:
        return {
            "error": type(self).__name__,
            "message": self.message,
            "hint": self.hint,
            "exit_code": self.exit_code,
        }


class ConfigError(RelayError):
    exit_code = 3
    hint = "Fix relay.toml (see schemas/config.schema.json)."


class BuildFailed(RelayError):
    exit_code = 4
    hint = "Read the step's output above; rerun with --debug for details."

    def __init__(self, step: str, reason: str, *, hint: str | None = None) -> None:
        super().__init__(f"{step}: {reason}", hint=hint)
        self.step = step
        self.reason = reason


class LockError(BuildFailed):
    """Resolving or reading a lock failed."""


class LimitExceeded(RelayError):
    exit_code = 5
    hint = "Move large dependencies into a layer, drop unused files, or ship a container image."


class LockStale(RelayError):
    exit_code = 6
    hint = "Run `relay lock` and commit the updated lock files."


class VersionConflict(RelayError):
    exit_code = 7
    hint = "Published versions are immutable: publish a new version (e.g. --bump patch)."


class VerificationFailed(RelayError):
    exit_code = 8
    hint = "Do not deploy this artifact; check who wrote it and which keys are trusted."


class GateRefused(RelayError):
    exit_code = 9
    hint = "Promote to the required environment first, wait, or use --force --reason TEXT."


class RaceLost(RelayError):
    exit_code = 10
    hint = "Another relay run changed the same environment; check `relay history` and rerun."


class AwsError(RelayError):
    exit_code = 11
    hint = "Check credentials, the role to assume and the region; rerun with --debug."


class NotFound(RelayError):
    exit_code = 12
    hint = "Check the name or version (`relay versions` lists what exists)."


class UnknownName(NotFound):
    """A function, layer or environment name the config does not declare: exit 12 in every command.

    Names given on the command line are resolved through `Project.function`,
    `Project.environment` and the bundle and lock target selections, which all
    raise this, so `relay invoke nope`, `relay promote 1.0.0 --to qa` and
    `relay build nope` say the same thing with the same code. (A name that the
    config itself refers to wrongly, `requires = "qa"`, is a ConfigError: the
    file is what needs fixing.)
    """

    def __init__(self, kind: str, names: Iterable[str], known: Iterable[str], *, config: str) -> None:
        wanted = ", ".join(repr(n) for n in names)
        choices = ", ".join(sorted(known)) or "none"
        super().__init__(f"{config}: no {kind} named {wanted}", hint=f"Known {_plural(kind)}: {choices}.")
        self.kind = kind


class InvokeFailed(RelayError):
    """A locally invoked handler raised, timed out or crashed (`relay invoke`)."""

    exit_code = 13
    hint = "The error above is what Lambda would return; fix the handler, `relay build`, and invoke again."


class DriftFound(RelayError):
    """`relay status` found code or configuration that relay did not put there (with or without --check)."""

    exit_code = 14
    hint = "`relay status` says per function what drifted and what puts it back."


class UsageError(RelayError):
    exit_code = 2
    hint = "See `relay COMMAND --help`."


class Interrupted(RelayError):
    """Ctrl-C (SIGINT): what the command had started was cleaned up (aliases moved back, the ledger closed)."""

    exit_code = 130  # 128 + SIGINT, as shells report a process ended by Ctrl-C
    hint = "What the command had started was put back (the message says what); rerun it to do the work."


# stdout's reader went away before relay finished (`relay versions | head`): 128 + SIGPIPE, as a shell reports it.
OUTPUT_CLOSED = 141


def interrupted(exc: BaseException) -> bool:
    """Whether `exc` is Ctrl-C, or an error raised while handling it (an apply that moved aliases back)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def os_error(exc: OSError, *, kind: type[RelayError] | None = None) -> RelayError:
    """An OS error on a file (permission denied, disk full, read-only file system) as a typed error naming the path.

    `kind` is the error of the command's own area (an unwritable dist/ is a failed build, exit 4); without it
    the error keeps the "unexpected" exit code 1, but says which path and why instead of calling it a bug.
    """
    path = exc.filename if exc.filename2 is None else f"{exc.filename} -> {exc.filename2}"
    message = f"cannot use {path}: {exc.strerror or type(exc).__name__}"
    hint = "Check that path: its permissions, its owner (a container's uid), free space, a read-only mount."
    if kind is None:
        return RelayError(message, hint=hint)
    if issubclass(kind, BuildFailed):
        return kind("local files", message, hint=hint)
    return kind(message, hint=hint)


EXIT_CODES: dict[int, str] = {
    0: "success (also a no-op: nothing to do)",
    1: "unexpected internal error (a bug: rerun with --debug and report it), or a local file relay could not use",
    UsageError.exit_code: "bad command line usage",
    ConfigError.exit_code: "invalid or missing configuration",
    BuildFailed.exit_code: "lock, install, packaging or import check failed",
    LimitExceeded.exit_code: "a Lambda size or layer-count limit would be exceeded",
    LockStale.exit_code: "a lock file is missing or stale (`relay lock --check`)",
    VersionConflict.exit_code: "the version exists with different bytes",
    VerificationFailed.exit_code: "a signature, digest or manifest failed verification",
    GateRefused.exit_code: "a promotion gate refused the change (or a protected environment's change was not confirmed)",
    RaceLost.exit_code: "a concurrent run won the race for the same version or environment",
    AwsError.exit_code: "an AWS call failed",
    NotFound.exit_code: "a function, layer, version or environment does not exist",
    InvokeFailed.exit_code: "an invoked handler raised, timed out or crashed (locally, or with --env in its account)",
    DriftFound.exit_code: "`relay status` found drift (code or configuration changed outside relay)",
    Interrupted.exit_code: "interrupted (Ctrl-C) after cleaning up what the command had started",
    OUTPUT_CLOSED: "stdout was closed before relay finished writing (e.g. piped into `head`)",
}


def _plural(kind: str) -> str:
    return " and ".join(k + "s" for k in kind.split(" or "))
