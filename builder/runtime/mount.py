"""Where Lambda puts a function's code, and the sys.path it builds from it.

Lambda unpacks the function zip as the task root, `/var/task`, and each
layer zip, in the function's order, into `/opt` (a later layer overwrites
an earlier one's files). Its Python runtime then puts on sys.path, in this
order: the task root, `/opt/python/lib/pythonX.Y/site-packages`,
`/opt/python`, the standard library, and last the runtime's own packages
(`/var/runtime`, see `provided.py`). relay mounts the same folders under a
temporary root and shows them by Lambda's names in errors.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from builder.fsutil import extract_zip
from builder.runtime.provided import link_provided

TASK_ROOT = "/var/task"
OPT = "/opt"
RUNTIME_DIR = "/var/runtime"


@attrs.frozen
class Mount:
    """A function mounted under a local root: task (`/var/task`), opt (`/opt`), runtime (`/var/runtime`)."""

    task: Path
    opt: Path
    runtime: Path

    def path_before_stdlib(self, python: str) -> list[str]:
        """The sys.path entries ahead of the standard library under Python `python` ("3.12")."""
        site = self.opt / "python" / "lib" / f"python{python}" / "site-packages"
        return [str(self.task), str(site), str(self.opt / "python")]

    def path_after_stdlib(self) -> list[str]:
        return [str(self.runtime)]

    def shown_as(self) -> dict[str, str]:
        """Each local folder and the name Lambda gives it."""
        return {str(self.task): TASK_ROOT, str(self.opt): OPT, str(self.runtime): RUNTIME_DIR}


def mount_bundles(bundle: Path, layers: tuple[Path, ...] | list[Path], root: Path) -> Mount:
    """Unpack `bundle` as `root/task`, `layers` (in order) into `root/opt`, and link the runtime's packages."""
    task, opt, runtime = root / "task", root / "opt", root / "runtime"
    extract_zip(bundle, task)
    opt.mkdir(parents=True, exist_ok=True)
    for layer in layers:
        extract_zip(layer, opt)
    link_provided(runtime)
    return Mount(task=task, opt=opt, runtime=runtime)
