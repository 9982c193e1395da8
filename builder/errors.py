"""One error root. Every error a user can cause has an exit code and a hint.

`builder.cli.main` catches `RelayError` once; a traceback is shown only with
`--debug`. The exit codes are part of the CLI's contract (README, "Exit codes").
"""

from __future__ import annotations


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


class InvokeFailed(RelayError):
    """A locally invoked handler raised, timed out or crashed (`relay invoke`)."""

    exit_code = 13
    hint = "The error above is what Lambda would return; fix the handler, `relay build`, and invoke again."


class DriftFound(RelayError):
    """`relay status --check` found code or configuration that relay did not put there."""

    exit_code = 14
    hint = "`relay status` says per function what drifted and what puts it back."


class UsageError(RelayError):
    exit_code = 2
    hint = "See `relay COMMAND --help`."


EXIT_CODES: dict[int, str] = {
    0: "success (also a no-op: nothing to do)",
    1: "unexpected internal error (a bug: rerun with --debug and report it)",
    UsageError.exit_code: "bad command line usage",
    ConfigError.exit_code: "invalid or missing configuration",
    BuildFailed.exit_code: "lock, install, packaging or import check failed",
    LimitExceeded.exit_code: "a Lambda size or layer-count limit would be exceeded",
    LockStale.exit_code: "a lock file is missing or stale (`relay lock --check`)",
    VersionConflict.exit_code: "the version exists with different bytes",
    VerificationFailed.exit_code: "a signature, digest or manifest failed verification",
    GateRefused.exit_code: "a promotion gate refused the change",
    RaceLost.exit_code: "a concurrent run won the race for the same version or environment",
    AwsError.exit_code: "an AWS call failed",
    NotFound.exit_code: "a function, layer, version or environment does not exist",
    InvokeFailed.exit_code: "a locally invoked handler raised, timed out or crashed",
    DriftFound.exit_code: "`relay status --check` found drift (code or configuration changed outside relay)",
}
