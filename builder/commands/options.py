"""Options and context shared by every command."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import click

from builder.commands.output import labelled
from builder.config import Project, find_config, load_project

if TYPE_CHECKING:
    from builder.local.state import LocalSandbox
    from builder.registry.factory import SigningKey

json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON document for machines.")


profile_option = click.option(
    "--profile", metavar="NAME",
    help="AWS profile for the environments' accounts that name none in relay.toml (beats AWS_PROFILE).")
region_option = click.option(
    "--region", metavar="NAME",
    help="AWS region where relay.toml names none (an environment's own region always wins for its account).")


class Context:
    """What the `relay` group's own options say (where the project is, --debug, AWS profile and region),
    and what a run found once."""

    def __init__(self, config: Path | None, directory: Path | None, debug: bool, *,
                 profile: str | None = None, region: str | None = None, argv: tuple[str, ...] = ()) -> None:
        self.config = config
        self.directory = directory
        self.debug = debug
        self.profile = profile
        self.region = region
        self.argv = argv  # the command line as given (`relay build` remembers it for `builder.entry`); () unknown
        self._sandbox: tuple[LocalSandbox | None] | None = None

    def project(self) -> Project:
        """The project config as written, with `--profile`/`--region` where it names none (`with_aws_options`)."""
        return with_aws_options(load_project(self.config, cwd=self.directory), profile=self.profile, region=self.region)

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
                labelled("note", f"using the local AWS at {sandbox.endpoint} (relay local; settings in {sandbox.state_file})")
            self._sandbox = (sandbox,)
        return self._sandbox[0]

    def signing_with(self, key: SigningKey) -> None:
        """Say which key signs this run's documents, and where it came from."""
        labelled("note", f"signing with key {key.keyid[:16]} from {key.source}")


def with_aws_options(project: Project, *, profile: str | None, region: str | None) -> Project:
    """`project` with relay's global `--profile` and `--region` filled in where the config names none.

    Profile precedence for an environment's account (and the registry's): its
    own `profile` in relay.toml, then `--profile`, then AWS_PROFILE, then the default chain
    (botocore reads AWS_PROFILE itself when no profile is given). `--region`
    only fills a region the config leaves out (the registry's): an
    environment's region is where its functions are, so it always wins.
    The local sandbox consults no profile (`AwsTarget.at_endpoint`).
    """
    if profile:
        project = attrs.evolve(project, environments={
            name: env if env.profile else attrs.evolve(env, profile=profile)
            for name, env in project.environments.items()
        })
        if project.registry is not None and not project.registry.profile:
            project = attrs.evolve(project, registry=attrs.evolve(project.registry, profile=profile))
    if region and project.registry is not None and not project.registry.region:
        project = attrs.evolve(project, registry=attrs.evolve(project.registry, region=region))
    return project
