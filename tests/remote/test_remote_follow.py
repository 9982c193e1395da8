"""`relay logs --follow`: new lines as they arrive, each once, the canary's versions as the alias moves; Ctrl-C: 130."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from promote_helpers import FakeClock
from remote_helpers import CallRecorder, deploy, now_ms, put_lines

from builder.remote.factory import open_logs
from builder.remote.logs import LogSource
from builder.remote.records import LogEvent

ROOT = Path(__file__).resolve().parents[2]


def test_follow_shows_new_and_late_lines_once_and_follows_the_canary(shop):
    first = now_ms() - 3000
    put_lines(shop, "staging", "shop-orders", "1", ["first"], at_ms=first)
    clock = FakeClock()

    def after_first_poll(_):
        put_lines(shop, "staging", "shop-orders", "1", ["second"], instance="b" * 16)
        put_lines(shop, "staging", "shop-orders", "1", ["delivered late"], at_ms=first - 1000, instance="c" * 16)

    def canary_starts(_):
        deploy(shop, "staging", "orders", variant="b")  # version 2, alias on it...
        shop.lam("staging").update_alias(FunctionName="shop-orders", Name="live", FunctionVersion="1",
                                         RoutingConfig={"AdditionalVersionWeights": {"2": 0.25}})  # ...then 25% of it
        put_lines(shop, "staging", "shop-orders", "2", ["from the canary"], instance="d" * 16)

    def interrupted(_):
        raise KeyboardInterrupt

    hooks = iter([after_first_poll, canary_starts, interrupted])
    clock.on_sleep.append(lambda c: next(hooks)(c))
    recorder = CallRecorder()
    remote = open_logs(shop.project(), "staging", "orders", clock=clock, counter=recorder)

    seen: list[LogSource | LogEvent] = []
    try:
        for item in remote.follow(clock.now() - dt.timedelta(minutes=10)):
            seen.append(item)
    except KeyboardInterrupt:
        pass

    shown = [(item.version, item.message) if isinstance(item, LogEvent) else ("source", item.target.versions)
             for item in seen]
    assert shown == [
        ("source", ("1",)),
        ("1", "first"),
        ("1", "delivered late"), ("1", "second"),
        ("source", ("1", "2")),
        ("2", "from the canary"),
    ]
    assert len(clock.slept) == 3 and set(clock.slept) == {2.0}
    # The alias is read at each poll; the log group only when the versions changed.
    assert (len(recorder.of("GetAlias")), len(recorder.of("GetFunctionConfiguration"))) == (3, 2)


def test_ctrl_c_ends_follow_with_exit_130(shop):
    put_lines(shop, "staging", "shop-orders", "1", ["hello from orders"])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    proc = subprocess.Popen([sys.executable, "-m", "builder", "-C", str(shop.root), "logs", "orders", "--env", "staging",
                             "--follow"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        line = proc.stdout.readline()  # the first line arrives before the first poll's sleep
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read()

    assert line.endswith("[1] hello from orders\n"), (line, stderr)
    assert code == 130, stderr
    assert "following (Ctrl-C stops)" in stderr and "Traceback" not in stderr
