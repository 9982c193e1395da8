#!/bin/sh
# The image's entrypoint: run relay as the owner of the workspace, so what it writes there (dist/, .relay/,
# requirements.txt) belongs to whoever owns the mounted folder on the host.
#
#   started as root (the image's default user) in a folder some other uid owns -> relay runs as that uid:gid
#   started as root in a root-owned folder (Docker Desktop mounts, CI checkouts) -> relay runs as root
#   started with `docker run --user UID:GID`                                     -> relay runs as UID:GID
#
# HOME, XDG_CACHE_HOME and RELAY_CACHE_DIR point at folders any uid may write (see the Dockerfile).
set -eu
if [ "$(id -u)" = 0 ]; then
    owner=$(stat -c %u .)
    if [ "$owner" != 0 ]; then
        exec setpriv --reuid "$owner" --regid "$(stat -c %g .)" --clear-groups -- relay "$@"
    fi
fi
exec relay "$@"
