#!/bin/sh
# relay as of one commit, for a before/after run of the benchmarks (nothing in the work tree changes):
#   bench/relay_at.sh 8563a5b /tmp/relay-8563a5b
#   .venv/bin/python bench/realapp_bench.py --relay /tmp/relay-8563a5b/relay ...
# Exports builder/ and schemas/ of COMMIT into DIR/src and writes DIR/relay, which runs that code
# with this checkout's venv (so the dependencies are today's; only relay's own code is the commit's).
set -eu
commit=$1
dir=$2
repo=$(cd "$(dirname "$0")/.." && pwd)
rm -rf "$dir"
mkdir -p "$dir/src"
git -C "$repo" archive "$commit" builder schemas | tar -x -C "$dir/src"
cat > "$dir/relay" <<WRAPPER
#!/bin/sh
PYTHONPATH=$dir/src exec $repo/.venv/bin/python -c '
import sys
try:
    from builder.entry import run  # the console script since the no-op entry
except ImportError:
    from builder.cli import run
sys.argv[0] = "relay"
sys.exit(run())' "\$@"
WRAPPER
chmod +x "$dir/relay"
git -C "$repo" rev-parse --short "$commit" > "$dir/commit"
echo "$dir/relay: relay at $(cat "$dir/commit")"
