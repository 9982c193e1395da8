"""The `relay` command line: thin commands over the library, one error handler.

Each command parses its options, loads the project, calls one library
function and renders the result (`--json` for machines). Errors derived from
`RelayError` become one line plus a hint and the error's exit code; anything
else is a bug and says so. `--debug` shows the traceback.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import click

from builder import __version__
from builder.commands.options import Context, profile_option, region_option
from builder.commands.output import emit_json, labelled
from builder.errors import (
    EXIT_CODES,
    OUTPUT_CLOSED,
    BuildFailed,
    Interrupted,
    InvokeFailed,
    LockError,
    RelayError,
    UsageError,
    interrupted,
    os_error,
)

# Commands are imported when used, so `relay build` does not pay for boto3 or moto imports.
COMMANDS = {
    "lock": "builder.commands.lock:lock",
    "build": "builder.commands.build:build",
    "publish": "builder.commands.registry:publish",
    "versions": "builder.commands.registry:versions",
    "verify": "builder.commands.registry:verify",
    "keygen": "builder.commands.registry:keygen",
    "promote": "builder.commands.promote:promote",
    "rollback": "builder.commands.promote:rollback",
    "status": "builder.commands.promote:status",
    "history": "builder.commands.history:history",
    "diff": "builder.commands.diff:diff",
    "iam-policy": "builder.commands.iam_policy:iam_policy",
    "invoke": "builder.commands.invoke:invoke",
    "logs": "builder.commands.logs:logs",
    "init": "builder.commands.init:init",
    "local": "builder.commands.local:local",
}

# An OS error no library seam translated (permission denied, disk full, a read-only mount) takes the exit code of
# the command's own area, as the README's table says (an unwritable dist/ fails the build: 4); elsewhere 1.
OS_ERRORS: dict[str, type[RelayError]] = {
    "lock": LockError,
    "build": BuildFailed,
    "keygen": UsageError,
    "invoke": InvokeFailed,
}


class OutputClosed(Exception):
    """stdout's reader went away while a command wrote to it (`relay versions | head`)."""


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use (click's documented pattern)."""

    def __init__(self, *args, lazy: dict[str, str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.lazy)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:  # click would turn it into a silent exit 1, the "bug" code
            raise OutputClosed() from exc
        except OSError as exc:
            if exc.filename is None:  # not about a file (a socket, a pipe): nothing to name; reported as a bug
                raise
            # Here the command that ran is known: its area's error gives the exit code.
            raise os_error(exc, kind=OS_ERRORS.get(ctx.invoked_subcommand or "")) from exc

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy:
            return None
        module_name, attr = self.lazy[cmd_name].split(":")
        return getattr(importlib.import_module(module_name), attr)


def _exit_codes_epilog() -> str:
    lines = [f"  {code:>2}  {meaning}" for code, meaning in sorted(EXIT_CODES.items())]
    return "\b\nExit codes:\n" + "\n".join(lines)


@click.group(cls=LazyGroup, lazy=COMMANDS, epilog=_exit_codes_epilog(),
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="relay")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="relay.toml or pyproject.toml to use.")
@click.option("-C", "--directory", type=click.Path(file_okay=False, path_type=Path), help="Run as if started in this folder.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@profile_option
@region_option
@click.pass_context
def cli(ctx: click.Context, config: Path | None, directory: Path | None, debug: bool, profile: str | None,
        region: str | None) -> None:
    """Build Lambda bundles once; publish, sign and promote the same bytes."""
    argv = ctx.obj if isinstance(ctx.obj, tuple) else ()  # what main() passed
    ctx.obj = Context(config, directory, debug, profile=profile, region=region, argv=argv)


def main(argv: list[str] | None = None) -> None:
    args = list(argv if argv is not None else sys.argv[1:])
    debug = "--debug" in args
    as_json = "--json" in args
    # Kept through the report and the exit: a second Ctrl-C while the error of the first is being told
    # must not end relay by the signal (exit -2, a traceback) instead of exit 130.
    with _one_ctrl_c():
        try:
            code = cli.main(args=args, prog_name="relay", standalone_mode=False, obj=tuple(args))
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(Interrupted.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(UsageError.exit_code)
        except RelayError as exc:
            if interrupted(exc):
                # Ctrl-C while applying: the error says what was put back (aliases, the ledger record).
                exc.message = "interrupted (Ctrl-C): " + exc.message
                exc.exit_code = Interrupted.exit_code
                if not getattr(exc, "stuck", ()):
                    exc.hint = Interrupted.hint
            _report(exc, debug, as_json=as_json)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            # Not while aliases moved (that is the ApplyFailed above): a promotion's ledger record is closed as failed.
            exit_interrupted(debug=debug, as_json=as_json)
        except (OutputClosed, BrokenPipeError):
            stdout_closed()
        except Exception as exc:
            _internal_error(exc, debug)
        sys.exit(code if isinstance(code, int) else 0)


def exit_interrupted(*, debug: bool, as_json: bool) -> NoReturn:
    """Ctrl-C outside any clean-up of its own: say so, exit 130."""
    _report(Interrupted("interrupted (Ctrl-C)", hint="Rerun the command when ready: work already done "
                                                      "(built bundles, published versions) is reused."),
            debug, as_json=as_json)
    sys.exit(Interrupted.exit_code)


def _internal_error(exc: Exception, debug: bool) -> NoReturn:
    if debug:
        _print_traceback()
    labelled("error", f"internal error: {type(exc).__name__}: {exc}")
    labelled("hint", "this is a bug in relay; rerun with --debug and report the traceback.")
    sys.exit(1)


class _CtrlC:
    """SIGINT: the first stops the command (KeyboardInterrupt); later ones do not interrupt its clean-up.

    A second Ctrl-C while a canary's aliases are being moved back would leave
    them split between two versions; Ctrl-\\ (SIGQUIT) still ends relay at once.
    """

    def __init__(self) -> None:
        self.fired = False

    def __call__(self, signum: int, frame: object) -> None:
        if self.fired:
            os.write(2, b"relay: still putting back what was started; Ctrl-\\ quits at once, leaving it as it is\n")
            return
        self.fired = True
        raise KeyboardInterrupt


@contextlib.contextmanager
def _one_ctrl_c() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # signal handlers belong to the main thread
        yield
        return
    handler = _CtrlC()
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        # After a first Ctrl-C relay is on its way out: a later one is ignored, not allowed to end it by the signal.
        signal.signal(signal.SIGINT, signal.SIG_IGN if handler.fired else previous)


def stdout_closed() -> None:
    """The reader of stdout went away (`relay versions | head`): stop quietly, as other command line tools do."""
    # Python flushes stdout again at exit; pointing it at /dev/null keeps that flush from failing too.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # not a file descriptor (a test's captured stream): nothing flushes it later
        pass
    sys.exit(OUTPUT_CLOSED)


def _report(exc: RelayError, debug: bool, *, as_json: bool) -> None:
    if debug:
        _print_traceback()
    if as_json and not exc.reported:
        emit_json(exc.to_json())
    labelled("error", exc.message)
    if exc.hint:
        labelled("hint", exc.hint)


def run() -> None:
    """The `relay` console script: main(), then an exit without interpreter teardown.

    By then every file is closed and every worker thread joined; tearing down
    the interpreter's modules would add about a fifth to a no-op build.
    Tests call main() instead, which raises SystemExit as usual.
    """
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:  # the reader went away (`relay versions | head`): what it did not read is dropped
            code = code or OUTPUT_CLOSED
    os._exit(code)


def _print_traceback() -> None:
    import traceback  # only with --debug: importing it costs a tenth of relay's start-up

    traceback.print_exc()
