"""relay's whole job on examples/shop, against a local AWS: `make demo`.

Runs the CLI exactly as a user would, on a copy of examples/shop in a temp
folder, and says at each step what happens and why. Needs no AWS account and
no Docker: `relay local up` starts an embedded AWS (moto) on 127.0.0.1 with a
registry/CI account and the staging and prod accounts, and `relay local down`
stops it at the end, whatever happened.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RELAY = Path(sys.executable).with_name("relay")
# Colour only on a terminal that wants it (NO_COLOR, any value, and TERM=dumb say no).
STYLED = sys.stdout.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
BOLD, DIM, GREEN, RED, RESET = ("\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m") if STYLED else ("",) * 5
# No line of the demo is wider than this; relay's own output is indented by six, so relay gets six fewer columns.
WIDTH = 120
INDENT = "      "


class DemoFailed(Exception):
    pass


def step(number: int, title: str, why: str) -> None:
    print(f"\n{BOLD}{number:>2}. {title}{RESET}")
    for line in textwrap.wrap(why, WIDTH - 4):
        print(f"    {DIM}{line}{RESET}")


def shown(line: str) -> list[str]:
    """A line of relay's output, indented under its command; what relay could not wrap itself is wrapped here."""
    if len(INDENT + line) <= WIDTH:
        return [(INDENT + line).rstrip()]
    own = line[: len(line) - len(line.lstrip())]
    return textwrap.wrap(line, WIDTH, initial_indent=INDENT, subsequent_indent=INDENT + own + "    ",
                         break_on_hyphens=False)


def relay(shop: Path, *args: str, expect: int = 0) -> str:
    print(f"    $ relay {' '.join(args)}")
    started = time.monotonic()
    environ = {**os.environ, "COLUMNS": str(WIDTH - len(INDENT))}
    done = subprocess.run([str(RELAY), *args], cwd=shop, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=environ)
    output = done.stdout.rstrip()
    for line in output.splitlines():
        for part in shown(line):
            print(part)
    took = time.monotonic() - started
    if done.returncode != expect:
        raise DemoFailed(f"`relay {' '.join(args)}` exited {done.returncode}, expected {expect}")
    mark = GREEN + "ok" if expect == 0 else GREEN + f"exit {expect}, as expected"
    print(f"      {mark}{RESET} {DIM}({took:.1f}s){RESET}")
    return done.stdout


def change_notify(shop: Path) -> None:
    handler = shop / "functions/notify/notify/handler.py"
    handler.write_text(handler.read_text() + "\n\n# 1.1.0: a change to notify only.\nRELEASE = \"1.1.0\"\n")
    print("    edited functions/notify/notify/handler.py")


def run(shop: Path) -> None:
    step(1, "Start the local AWS",
         "A moto server on 127.0.0.1 stands in for three accounts: registry/CI, staging and prod.")
    relay(shop, "local", "up")

    step(2, "Check the locks",
         "Each requirements.in is locked with hashes for the Lambda runtime; CI fails if one is stale.")
    relay(shop, "lock", "--check")

    step(3, "Build",
         "Every function and layer becomes a reproducible zip and a manifest (same bytes on any machine).")
    relay(shop, "build")

    step(4, "Publish 1.0.0",
         "Blobs, then signed manifests, then the release document: a version is whole or absent.")
    relay(shop, "publish", "--version", "1.0.0")
    relay(shop, "verify", "1.0.0")

    step(5, "Promote 1.0.0 to staging",
         "Verify signatures and digests, plan, publish Lambda versions, move the 'live' aliases. The settings "
         "come from the signed release, with staging's own values (* in the plan): TABLE_NAME=shop-orders-staging.")
    relay(shop, "promote", "1.0.0", "--to", "staging")

    step(6, "Promote 1.0.0 to prod",
         "prod requires 30 minutes of soak in staging. This first release is forced, with a reason the ledger keeps. "
         "Same code (same CodeSha256), prod's own values: TABLE_NAME=shop-orders-prod, memory 512.")
    relay(shop, "promote", "1.0.0", "--to", "prod", expect=9)
    relay(shop, "promote", "1.0.0", "--to", "prod", "--force", "--reason", "first release of the demo")

    step(7, "Change one function and publish 1.1.0",
         "Only notify changes: only its bundle is rebuilt; the others keep their digests.")
    change_notify(shop)
    relay(shop, "build")
    relay(shop, "publish", "--version", "1.1.0")
    relay(shop, "diff", "1.0.0", "1.1.0")

    step(8, "Promote 1.1.0 to staging",
         "Only notify gets a new Lambda version; orders and billing already run these bytes.")
    relay(shop, "promote", "1.1.0", "--to", "staging")

    step(9, "Try 1.1.0 in prod",
         "The gate refuses: staging has not run 1.1.0 for the 30-minute soak yet. Nothing in prod changes.")
    relay(shop, "promote", "1.1.0", "--to", "prod", expect=9)

    step(10, "Status", "What runs where, by artifact version and digest; drift would show here.")
    relay(shop, "status")

    step(11, "Roll staging back",
         "Moving aliases back to the versions 1.0.0 published: no rebuild, seconds.")
    relay(shop, "rollback", "--env", "staging")

    step(12, "History", "The ledger: every promotion, refusal and rollback, who and when.")
    relay(shop, "history", "--env", "staging")
    relay(shop, "history", "--env", "prod")


def main() -> int:
    if not RELAY.exists():
        print(f"relay is not installed next to {sys.executable}: run `make demo`", file=sys.stderr)
        return 2
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="relay-demo-"))
    shop = work / "shop"
    shutil.copytree(HERE / "shop", shop, ignore=shutil.ignore_patterns("dist", ".relay", "__pycache__"))
    os.environ.pop("AWS_ENDPOINT_URL", None)  # the demo's own local AWS, not one from the shell
    print(f"{BOLD}relay demo{RESET}: examples/shop copied to {shop}")
    try:
        run(shop)
    except DemoFailed as exc:
        print(f"\n{RED}demo failed: {exc}{RESET}", file=sys.stderr)
        return 1
    finally:
        print(f"\n{BOLD}Stop the local AWS{RESET}")
        subprocess.run([str(RELAY), "local", "down"], cwd=shop, check=False)
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{GREEN}{BOLD}demo finished in {time.monotonic() - started:.0f}s{RESET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
