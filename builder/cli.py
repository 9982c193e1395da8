"""The `relay` command line: thin commands over the library, one error handler.

Each command parses its options, loads the project, calls one library
function and renders the result (`--json` for machines). Errors derived from
`RelayError` become one line plus a hint and the error's exit code; anything
else is a bug and says so. `--debug` shows the traceback.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import click

from builder import __version__
from builder.errors import EXIT_CODES, RelayError, UsageError
from builder.commands.options import Context
from builder.output import emit_json


def _exit_codes_epilog() -> str:
    lines = [f"  {code:>2}  {meaning}" for code, meaning in sorted(EXIT_CODES.items())]
    return "\b\nExit codes:\n" + "\n".join(lines)


@click.group(epilog=_exit_codes_epilog(), context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="relay")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="relay.toml or pyproject.toml to use.")
@click.option("-C", "--directory", type=click.Path(file_okay=False, path_type=Path), help="Run as if started in this folder.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, directory: Path | None, debug: bool) -> None:
    """Build Lambda bundles once; publish, sign and promote the same bytes."""
    ctx.obj = Context(config, directory, debug)


def _register_commands() -> None:
    from builder.commands import build as build_commands

    for module in (build_commands,):
        for command in module.COMMANDS:
            cli.add_command(command)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    args = list(argv if argv is not None else sys.argv[1:])
    debug = "--debug" in args
    try:
        code = cli.main(args=args, prog_name="relay", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(UsageError.exit_code)
    except RelayError as exc:
        _report(exc, debug, as_json="--json" in args)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the one catch point for bugs
        if debug:
            traceback.print_exc()
        click.echo(f"error: internal error: {type(exc).__name__}: {exc}", err=True)
        click.echo("hint: this is a bug in relay; rerun with --debug and report the traceback.", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def _report(exc: RelayError, debug: bool, *, as_json: bool) -> None:
    if debug:
        traceback.print_exc()
    if as_json:
        emit_json(exc.to_json())
    click.echo(f"error: {exc.message}", err=True)
    if exc.hint:
        click.echo(f"hint: {exc.hint}", err=True)
