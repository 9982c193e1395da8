"""Options and context shared by every command."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from builder.config import Project, find_config, load_project

if TYPE_CHECKING:
    from builder.local.state import LocalSandbox
    from builder.registry.factory import SigningKey

json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON document for machines.")


class Context:
    """What the `relay` group's own options say (where the project is, --debug), and what a run found once."""

    def __init__(self, config: Path | None, directory: Path | None, debug: bool) -> None:
        self.config = config
        self.directory = directory
        self.debug = debug
        self._sandbox: tuple[LocalSandbox | None] | None = None

    def project(self) -> Project:
        """The project config, as written (nothing added from the environment or the sandbox)."""
        return load_project(self.config, cwd=self.directory)

    def root(self) -> Path:
        """The project's folder, without loading its config."""
        if self.config is not None:
            return self.config.resolve().parent
        return find_config(self.directory or Path.cwd()).parent

    def sandbox(self) -> LocalSandbox | None:
        """`relay local`'s sandbox when it is up for this project (and not overridden by AWS_ENDPOINT_URL).

        Read once per command; commands that talk to AWS hand it to the
        factories. The first call says on stderr which endpoint is used.
        """
        if self._sandbox is None:
            from builder.local.state import read_sandbox

            sandbox = read_sandbox(self.root(), os.environ)
            if sandbox is not None:
                click.echo(f"note: using the local AWS at {sandbox.endpoint} (relay local; settings in {sandbox.state_file})",
                           err=True)
            self._sandbox = (sandbox,)
        return self._sandbox[0]

    def signing_with(self, key: SigningKey) -> None:
        """Say which key signs this run's documents, and where it came from."""
        click.echo(f"note: signing with key {key.keyid[:16]} from {key.source}", err=True)
