# relay's CI image: `relay lock`, `relay build`, `relay publish`, `relay promote` ...
#
#   docker build -t relay .
#   docker run --rm -v "$PWD:/workspace" relay build
#
# The base is the python3.12 runtime; the python3.11, python3.13 and python3.14 interpreters
# are copied in from the official images of the same Debian release, so locks
# are resolved and handlers import-checked under every Lambda runtime relay
# supports. Every base image is pinned by its full version (bump them together).

FROM python:3.11.13-slim-bookworm AS python311
FROM python:3.13.5-slim-bookworm AS python313
FROM python:3.14.0-slim-bookworm AS python314

# relay is installed the README way (`pip install .` of the source, not editable)
# into its own venv, built here so the final image holds no source tree.
FROM python:3.12.11-slim-bookworm AS install
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY . .
RUN python -m venv /opt/relay \
 && /opt/relay/bin/python -m pip install . \
 && /opt/relay/bin/relay --version

FROM python:3.12.11-slim-bookworm

# git: the build records the commit it came from in each manifest.
RUN apt-get update \
 && apt-get install --yes --no-install-recommends git \
 && rm -rf /var/lib/apt/lists/* \
 && git config --system --add safe.directory '*'

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
ENV PATH=/opt/relay/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 --user-group --shell /usr/sbin/nologin relay \
 && mkdir /workspace \
 && chown relay:relay /workspace
USER relay
WORKDIR /workspace
# relay's caches (wheels, builds, pip-tools venvs per Python): mount a volume here to keep them warm.
ENV RELAY_CACHE_DIR=/home/relay/.cache/relay

ENTRYPOINT ["relay"]
CMD ["--help"]
