# relay's CI image: `relay lock`, `relay build`, `relay publish`, `relay promote` ...
#
#   docker build -t relay .
#   docker run --rm -v "$PWD:/workspace" relay build                  # runs as the folder's owner
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/workspace" relay build
#   docker run --rm -v "$PWD:/workspace" -v relay-cache:/cache relay build   # caches kept warm
#
# Who relay runs as (docker/entrypoint.sh): the image starts as root and the entrypoint drops to the uid:gid
# that owns the working folder, so on a Linux host dist/ and .relay/ belong to the host user; a root-owned
# folder (Docker Desktop, CI checkouts) keeps root; `--user` runs as that user. HOME, XDG_CACHE_HOME and
# RELAY_CACHE_DIR are folders any uid may write, and git trusts every folder (docker/gitconfig).
#
# Pinned: every base image by digest (refresh with docker/refresh-digests.sh, bump versions together), relay's
# dependencies and the wheel builder by sha256 (docker/*requirements.txt: `make docker-requirements`).
#
# The base is the python3.12 runtime; the python3.11, python3.13 and python3.14 interpreters are copied in
# from the official images of the same Debian release, so locks are resolved and handlers import-checked
# under every Lambda runtime relay supports.

FROM python:3.11.13-slim-bookworm@sha256:86adf8dbadc3d6e82ee5dd2c74bec2e1c2467cdad47886280501df722372d2e1 AS python311
FROM python:3.13.5-slim-bookworm@sha256:4c2cf9917bd1cbacc5e9b07320025bdb7cdf2df7b0ceaccb55e9dd7e30987419 AS python313
FROM python:3.14.0-slim-bookworm@sha256:d13fa0424035d290decef3d575cea23d1b7d5952cdf429df8f5542c71e961576 AS python314

# relay is built into its own venv here, so the final image holds no source tree.
FROM python:3.12.11-slim-bookworm@sha256:519591d6871b7bc437060736b9f7456b8731f1499a57e22e6c285135ae657bf7 AS install
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# relay's dependencies first (a layer that changes only with the lock): every file must match a sha256 of
# docker/requirements.txt, and only wheels are accepted (nothing is compiled at install time).
COPY docker/requirements.txt docker/build-requirements.txt docker/
RUN python -m venv /opt/relay \
 && /opt/relay/bin/python -m pip install --require-hashes --only-binary :all: -r docker/requirements.txt
# relay itself: its wheel built by the hash-pinned backend without build isolation (no unpinned download),
# then installed with --no-deps (its dependencies are the ones above).
COPY . .
RUN python -m venv /opt/wheel-builder \
 && /opt/wheel-builder/bin/python -m pip install --require-hashes --only-binary :all: -r docker/build-requirements.txt \
 && /opt/wheel-builder/bin/python -m pip wheel --no-deps --no-build-isolation --no-index --wheel-dir /wheels . \
 && /opt/relay/bin/python -m pip install --no-deps --no-index /wheels/lambda_relay-*.whl \
 && /opt/relay/bin/python -m pip check \
 && /opt/relay/bin/relay --version

FROM python:3.12.11-slim-bookworm@sha256:519591d6871b7bc437060736b9f7456b8731f1499a57e22e6c285135ae657bf7

# git: the build records the commit it came from in each manifest and leaves out what .gitignore lists.
RUN apt-get update \
 && apt-get install --yes --no-install-recommends git \
 && rm -rf /var/lib/apt/lists/*
COPY docker/gitconfig /etc/gitconfig

# The other Lambda runtimes' interpreters: same Debian, same shared libraries.
COPY --from=python311 /usr/local/bin/python3.11 /usr/local/bin/python3.11
COPY --from=python311 /usr/local/lib/python3.11 /usr/local/lib/python3.11
COPY --from=python311 /usr/local/lib/libpython3.11.so.1.0 /usr/local/lib/libpython3.11.so.1.0
COPY --from=python313 /usr/local/bin/python3.13 /usr/local/bin/python3.13
COPY --from=python313 /usr/local/lib/python3.13 /usr/local/lib/python3.13
COPY --from=python313 /usr/local/lib/libpython3.13.so.1.0 /usr/local/lib/libpython3.13.so.1.0
COPY --from=python314 /usr/local/bin/python3.14 /usr/local/bin/python3.14
COPY --from=python314 /usr/local/lib/python3.14 /usr/local/lib/python3.14
COPY --from=python314 /usr/local/lib/libpython3.14.so.1.0 /usr/local/lib/libpython3.14.so.1.0
RUN ldconfig \
 && for v in 3.11 3.12 3.13 3.14; do "python$v" -c "import ensurepip, ssl, sqlite3, venv, zlib"; done

COPY --from=install /opt/relay /opt/relay
COPY docker/entrypoint.sh /usr/local/bin/relay-entrypoint

# Folders any uid may write (sticky, like /tmp): relay's caches (wheels, builds, pip-tools venvs per Python)
# and pip's and uv's under /cache (mount a volume there to keep them warm), a HOME for tools that want one.
ENV PATH=/opt/relay/bin:$PATH \
    HOME=/home/relay \
    XDG_CACHE_HOME=/cache \
    RELAY_CACHE_DIR=/cache/relay \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN mkdir -p /home/relay /cache/relay /workspace \
 && chmod 1777 /home/relay /cache /cache/relay \
 && setpriv --version \
 && relay --version
WORKDIR /workspace
# No USER: the entrypoint picks the workspace owner (see the top of this file).
ENTRYPOINT ["/usr/local/bin/relay-entrypoint"]
CMD ["--help"]
