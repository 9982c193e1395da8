#!/usr/bin/env bash
# Regenerate the hash-pinned requirements the Docker image installs (run it as `make docker-requirements`).
#
#   docker/requirements.txt        relay's runtime dependencies (pyproject.toml [project] dependencies) at
#                                  the versions of constraints.txt, the ones the test suite passed with
#   docker/build-requirements.txt  pyproject.toml [build-system] requires: the backend that builds relay's
#                                  own wheel inside the image, with no build isolation
#
# Every file of every pinned version is listed with its sha256 (all platforms: the image is built for amd64
# and arm64), so the image's `pip install --require-hashes` refuses anything else. Run it after changing
# dependencies in pyproject.toml (and `make constraints`), and commit both files.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-.venv/bin/uv}
PYTHON=${PYTHON:-.venv/bin/python}
IMAGE_PYTHON=3.12  # the Python of the Dockerfile's install stage

compile() {
    "$UV" pip compile --quiet --generate-hashes --universal --python-version "$IMAGE_PYTHON" \
        --no-cache --custom-compile-command "make docker-requirements" "$@"
}

compile pyproject.toml --constraint constraints.txt --output-file docker/requirements.txt
"$PYTHON" -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))' \
    | compile - --output-file docker/build-requirements.txt
