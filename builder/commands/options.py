"""Options and context shared by every command."""

from __future__ import annotations

from pathlib import Path

import click

from builder.config import Project, load_project

json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON document for machines.")


class Context:
    """What the `relay` group's own options say: where the project is, --debug."""

    def __init__(self, config: Path | None, directory: Path | None, debug: bool) -> None:
        self.config = config
        self.directory = directory
        self.debug = debug

    def project(self) -> Project:
        """The project config; pointed at `relay local`'s sandbox when one is up for it."""
        from builder.localaws import apply_local_settings

        project, note = apply_local_settings(load_project(self.config, cwd=self.directory))
        if note:
            click.echo(f"note: {note}", err=True)
        return project
