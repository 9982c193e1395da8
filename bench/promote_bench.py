"""Measure promotion against a local moto server (not a test: run it by hand).

    .venv/bin/python bench/promote_bench.py

Reports wall time to promote 1 function vs 20 (parallel, and serial for
comparison), to roll back a 20-function release, and AWS requests per
function promoted (counted with builder.aws.session.RequestCounter). moto
answers in well under a millisecond, so these times are relay's own cost
(boto3 clients, hashing, threads), not AWS latency: against real AWS each
Lambda call takes tens of milliseconds and parallelism matters more.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import attrs

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS / "promote"))  # promote_helpers: the small shop the promotion tests use
# tests/conftest.py: how the suite starts moto and reaches the three accounts.
_spec = importlib.util.spec_from_file_location("relay_tests_conftest", TESTS / "conftest.py")
conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(conftest)

from promote_helpers import new_shop  # noqa: E402

from builder.aws.session import RequestCounter  # noqa: E402
from builder.promote.factory import run_rollback  # noqa: E402
from builder.promote.promoter import PromoteRequest  # noqa: E402
from builder.promote.rollback import RollbackRequest  # noqa: E402


def timed(label, work):
    started = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    print(f"{label:<58} {seconds:7.2f} s")
    return result, seconds


class SlowLambda:
    """The Lambda seam with a fixed delay per call, standing in for real AWS round trips."""

    def __init__(self, inner, delay: float) -> None:
        self._inner, self._delay = inner, delay

    def __getattr__(self, name):
        real = getattr(self._inner, name)
        if not callable(real):
            return real

        def call(*args, **kwargs):
            time.sleep(self._delay)
            return real(*args, **kwargs)

        return call


def counted(shop, env, version, *, workers=16, delay=0.0, **request):
    counter = RequestCounter()
    access = shop.access(env, counter=counter)
    if delay:
        access = attrs.evolve(access, lam=SlowLambda(access.lam, delay))
    promoter = shop.promoter(env, counter=counter, access=access)
    promoter.executor.workers = workers
    result = promoter.promote(PromoteRequest(version, **request))
    return result, counter


def main() -> None:
    port = conftest._free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = Path(tempfile.mkdtemp(prefix="relay-measure-")) / "moto.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with open(log, "wb") as log_fh:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=log_fh, env=env)
    conftest._wait_until_up(server, endpoint, log)
    conftest._call(f"{endpoint}/moto-api/config", {"lambda": {"use_docker": False}})
    os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_DEFAULT_REGION=conftest.REGION, AWS_CONFIG_FILE=os.devnull,
                      AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    os.environ.pop("RELAY_SIGNING_KEY", None)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["RELAY_CACHE_DIR"] = str(Path(tmp) / "cache")
            run(conftest.AwsAccounts(endpoint), Path(tmp))
    finally:
        server.terminate()
        server.wait(10)


def run(aws, tmp: Path) -> None:
    shop = new_shop(aws, tmp)
    extra = shop.add_functions(17)  # 3 + 17 = 20 functions
    all_functions = ["billing", "notify", "orders", *extra]
    shop.publish("1.0.0")
    forced = {"force": True, "reason": "measurement"}

    (one, c1), _t1 = timed("promote 1 function (create), staging", lambda: counted(shop, "staging", "1.0.0", only=("orders",)))
    (full, c20), _t20 = timed("promote 20 functions (create), prod, 16 threads",
                             lambda: counted(shop, "prod", "1.0.0", **forced))
    for fn in all_functions:
        shop.set_code(fn, "b")
    shop.publish("1.1.0")
    (upd, cu), tu = timed("promote 20 functions (new code), prod, 16 threads",
                          lambda: counted(shop, "prod", "1.1.0", **forced))
    for fn in all_functions:
        shop.set_code(fn, "c")
    shop.publish("1.2.0")
    (_ser, _cs), ts = timed("promote 20 functions (new code), prod, 1 thread",
                          lambda: counted(shop, "prod", "1.2.0", workers=1, **forced))
    for fn in all_functions:
        shop.set_code(fn, "d")
    shop.publish("1.3.0")
    _, tlp = timed("promote 20 functions (new code), 16 threads, +100ms/call",
                   lambda: counted(shop, "prod", "1.3.0", delay=0.1, **forced))
    for fn in all_functions:
        shop.set_code(fn, "e")
    shop.publish("1.4.0")
    _, tls = timed("promote 20 functions (new code), 1 thread, +100ms/call",
                   lambda: counted(shop, "prod", "1.4.0", workers=1, delay=0.1, **forced))
    _, tl1 = timed("promote 1 function (new code), +100ms/call",
                   lambda: counted(shop, "staging", "1.4.0", delay=0.1, only=("orders",)))
    counter = RequestCounter()
    _back, _tr = timed("roll back 20 functions, prod (registry reachable)",
                     lambda: run_rollback(shop.project(), "prod", RollbackRequest(), counter=counter, clock=shop.clock))
    shop.config.write_text(shop.config.read_text().replace('bucket = "relay-artifacts"', 'bucket = "no-such-bucket"'))
    offline_counter = RequestCounter()
    _, _to = timed("roll back 20 functions, prod (registry out of reach)",
                  lambda: run_rollback(shop.project(), "prod", RollbackRequest(), counter=offline_counter, clock=shop.clock))

    print()
    for label, _result, c, n in (("1 function, create", one, c1, 1), ("20 functions, create", full, c20, 20),
                                ("20 functions, new code", upd, cu, 20)):
        ops = c.by_operation()
        lam = c.for_service("lambda")
        print(f"{label:<24} requests: {c.total:4d} total ({c.total / n:5.1f}/function), "
              f"lambda {lam:4d} ({lam / n:4.1f}/function), s3 {c.for_service('s3')}, sts {c.for_service('sts')}, "
              f"cloudwatch {c.for_service('cloudwatch')}")
        print("    " + ", ".join(f"{k}={v}" for k, v in ops.items()))
    print(f"rollback (reachable)     requests: {counter.total} ({counter.for_service('lambda')} lambda)")
    print(f"rollback (out of reach)  requests: {offline_counter.total} ({offline_counter.for_service('lambda')} lambda)")
    print(f"\nparallel speed-up on 20 functions with new code: {ts / tu:.1f}x ({ts:.2f}s serial vs {tu:.2f}s)")
    print(f"with 100 ms per Lambda call: 1 function {tl1:.2f}s, 20 functions {tlp:.2f}s parallel, {tls:.2f}s serial "
          f"({tls / tlp:.1f}x)")


if __name__ == "__main__":
    main()
