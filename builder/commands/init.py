"""`relay init`: a new project that locks, builds and invokes straight away."""

from __future__ import annotations

from pathlib import Path

import click

from builder.commands.options import Context, json_option
from builder.commands.output import emit_json
from builder.pipeline_templates import PIPELINE_FILES
from builder.scaffold import DEFAULT_PIPELINE, DEFAULT_RUNTIME, PIPELINES, InitResult, supported_runtimes


@click.command()
@click.argument("folder", required=False, default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", metavar="APP", help="The app's name.  [default: from the folder's name]")
@click.option("--runtime", type=click.Choice(supported_runtimes()), default=DEFAULT_RUNTIME, show_default=True)
@click.option("--pipeline", type=click.Choice(PIPELINES), default=DEFAULT_PIPELINE, show_default=True,
              help="Which CI definition to write (relay's pipelines/ templates).")
@json_option
@click.pass_obj
def init(obj: Context, folder: Path, name: str | None, runtime: str, pipeline: str, as_json: bool) -> None:
    """Create a new project in FOLDER (default: here) that locks, builds and invokes at once.

    Never overwrites a file: when any file it would write exists, it writes nothing.
    """
    from builder.scaffold import init_project

    target = folder if folder.is_absolute() or obj.directory is None else obj.directory / folder
    result = init_project(target, name=name, runtime=runtime, pipeline=pipeline)
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo(render_init(result, shown_root=str(folder)))


def render_init(result: InitResult, shown_root: str | None = None) -> str:
    """What `relay init` tells a person: the files, then what to run next."""
    where = shown_root or str(result.root)
    lines = [f"Created {result.app} ({result.runtime}) in {where}:"]
    lines += [f"  {path}" for path in result.files]
    cd = [] if where in (".", "") else [f"  cd {where}"]
    lines += [
        "",
        "Next:",
        *cd,
        "  relay lock                                      # resolve requirements.in files into hashed locks",
        "  relay build                                     # dist/: zips + manifests",
        "  relay invoke hello --event events/hello.json    # run the built function locally",
        "  relay local up                                  # a local AWS with relay.toml's bucket, accounts and roles",
        "  relay publish --bump patch                      # signed with signing.key (gitignored), trusted in relay.toml",
        "  relay promote 0.0.1 --to staging",
        "For real AWS, replace the placeholder bucket, accounts and roles in relay.toml.",
    ]
    ci_files = list(PIPELINE_FILES.get(result.pipeline, {}).values())
    if ci_files:
        lines.append(f"The CI files ({', '.join(ci_files)}) say in their first lines which secrets and variables they need.")
    return "\n".join(lines)
