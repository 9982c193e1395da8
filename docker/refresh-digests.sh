#!/usr/bin/env bash
# Re-pin the Dockerfile's base images to the digest their tag names today (security rebuilds of the same
# Python and Debian versions). Needs a docker client that can reach the registry (no daemon:
# `docker buildx imagetools inspect` asks the registry directly). To move to a new Python version, edit the
# tag in the Dockerfile first (keep the four on the same Debian release), then run this.
set -euo pipefail
cd "$(dirname "$0")/.."
for ref in $(sed -n 's/^FROM \([^ ]*@sha256:[0-9a-f]\{64\}\).*/\1/p' Dockerfile | sort -u); do
    image=${ref%@*}
    digest=$(docker buildx imagetools inspect "$image" --format '{{json .Manifest.Digest}}' | tr -d '"')
    [[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "no digest for $image: $digest" >&2; exit 1; }
    sed -i "s|${ref}|${image}@${digest}|g" Dockerfile
    echo "$image@$digest"
done
