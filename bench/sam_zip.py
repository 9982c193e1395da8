"""Zip `sam build`'s output folders with SAM's own zipper, as `sam package`/`sam deploy` upload them.

Run with the SAM venv's Python (bench/harness.py does):

    bench/.venv-sam/bin/python bench/sam_zip.py OUT_DIR FOLDER...

writes OUT_DIR/<folder name> (SAM's zipper adds `.zip`) for each FOLDER.
"""

import sys
from pathlib import Path

from samcli.lib.package.utils import make_zip_with_lambda_permissions


def main(out: str, folders: list[str]) -> None:
    for folder in folders:
        make_zip_with_lambda_permissions(str(Path(out) / Path(folder).name), folder)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
