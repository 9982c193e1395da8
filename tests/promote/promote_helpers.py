"""Promotion test helpers: a small real app built and published to the moto registry, three accounts.

The app ("shop", no third-party packages, so it builds offline) has three
functions sharing one layer made of a local package; one function runs on
arm64. `Shop` builds it with relay's own pipeline, publishes it with relay's
own publisher, and promotes it with relay's own promoter, so the tests go
through the same code as the CLI. Assertions use boto3 directly, each account
through its own session.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import attrs

from builder.aws.session import RequestCounter
from builder.bundle.pipeline import build_project
from builder.config import Project, load_project
from builder.promote.canary import Clock
from builder.promote.factory import EnvironmentAccess, connect, create_promoter
from builder.promote.promoter import PromoteRequest, PromoteResult
from builder.registry.factory import open_signer, open_store
from builder.registry.publish import VersionRequest, publish
from builder.registry.signing import GeneratedKey, generate_key_file
from builder.registry.store import S3Store

BUCKET = "relay-artifacts"
FUNCTIONS = ("billing", "notify", "orders")

CONFIG = """\
[app]
name = "shop"
runtime = "python3.12"

[functions.orders]
source = "functions/orders"
handler = "orders.handler.handle"
layers = ["common"]
memory = 256
timeout = 10
environment = {{ TAX_RATE = "0.08" }}
role = "arn:aws:iam::{{account}}:role/relay-exec"

[functions.billing]
source = "functions/billing"
handler = "billing.handler.handle"
architecture = "arm64"
layers = ["common"]
role = "arn:aws:iam::{{account}}:role/relay-exec"

[functions.notify]
source = "functions/notify"
handler = "notify.handler.handle"
layers = ["common"]
role = "arn:aws:iam::{{account}}:role/relay-exec"
{extra_functions}
[layers.common]
packages = ["libs/shared"]

[registry]
bucket = "{bucket}"
prefix = "relay"
region = "us-east-1"
role = "{registry_role}"

[registry.signing]
kind = "ed25519"
key = "keys/relay.key"

[[registry.trusted_keys]]
keyid = "{keyid}"
public_key = "keys/relay.key.pub"

[environments.staging]
account = "222222222222"
region = "us-east-1"
role = "arn:aws:iam::222222222222:role/relay-deployer"
{staging_extra}
[environments.prod]
account = "333333333333"
region = "us-east-1"
role = "arn:aws:iam::333333333333:role/relay-deployer"
requires = "staging"
soak = "30m"
{prod_extra}"""


class FakeClock:
    """Time that moves only when slept (or advanced); `on_sleep` hooks run at each sleep."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        # Starts at the real time: leases written with it must mean the same to a run on the real clock (the CLI).
        self._now = start or dt.datetime.now(dt.UTC).replace(microsecond=0)
        self._lock = threading.Lock()
        self.slept: list[float] = []
        self.on_sleep: list[Callable[[FakeClock], None]] = []

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        with self._lock:
            self.slept.append(seconds)
        for hook in list(self.on_sleep):
            hook(self)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += dt.timedelta(seconds=seconds)


def write_tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def handler_source(name: str, variant: str) -> str:
    return textwrap.dedent(f"""\
        from shared import money

        def handle(event, context):
            return {{"function": {name!r}, "variant": {variant!r}, "cents": money.cents(1.5)}}
        """)


# Staging's canary config in the tests that watch an alarm between steps.
CANARY = 'alarms = ["shop-errors"]\ncanary = { steps = [10, 50], interval = "5m" }\n'


@attrs.define
class Shop:
    """The app's folder, wired to the moto accounts."""

    root: Path
    key: GeneratedKey
    aws: object
    clock: FakeClock = attrs.field(factory=FakeClock)
    extra_functions: list[str] = attrs.field(factory=list)
    staging_extra: str = ""
    prod_extra: str = ""
    _clients: dict = attrs.field(factory=dict)

    @property
    def config(self) -> Path:
        return self.root / "relay.toml"

    def write_config(self) -> None:
        extra = "".join(self._function_block(name) for name in self.extra_functions)
        self.config.write_text(CONFIG.format(
            bucket=BUCKET, registry_role=self.aws.role_arn("registry"), keyid=self.key.keyid,
            extra_functions=extra, staging_extra=self.staging_extra, prod_extra=self.prod_extra,
        ), encoding="utf-8")

    @staticmethod
    def _function_block(name: str) -> str:
        return (f'\n[functions.{name}]\nsource = "functions/{name}"\nhandler = "{name}.handler.handle"\n'
                f'layers = ["common"]\nrole = "arn:aws:iam::{{account}}:role/relay-exec"\n')

    def project(self) -> Project:
        return load_project(self.config)

    def set_code(self, name: str, variant: str) -> None:
        write_tree(self.root, {f"functions/{name}/{name}/__init__.py": "",
                               f"functions/{name}/{name}/handler.py": handler_source(name, variant)})

    def add_functions(self, count: int) -> list[str]:
        """`count` more functions fn00.., each with its own code (for measurements)."""
        names = [f"fn{i:02d}" for i in range(count)]
        for name in names:
            self.set_code(name, "a")
        self.extra_functions = names
        self.write_config()
        return names

    def build(self) -> None:
        build_project(self.project())

    def store(self, counter: RequestCounter | None = None) -> S3Store:
        return open_store(self.project(), counter=counter)

    def watch_canary(self) -> None:
        """Staging promotes in canary steps (10%, 50%) watching the alarm `shop-errors`, created quiet."""
        self.staging_extra = CANARY
        self.write_config()
        self.aws.client("staging", "cloudwatch").put_metric_alarm(
            AlarmName="shop-errors", MetricName="Errors", Namespace="AWS/Lambda", Statistic="Sum", Period=60,
            EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")

    def publish(self, version: str) -> None:
        self.build()
        project = self.project()
        store = self.store()
        publish(project, store, open_signer(project, store), VersionRequest(version=version))

    def access(self, env: str, counter: RequestCounter | None = None) -> EnvironmentAccess:
        return connect(self.project(), env, counter=counter)

    def promoter(self, env: str, *, access: EnvironmentAccess | None = None, clock: Clock | None = None,
                 counter: RequestCounter | None = None, store: S3Store | None = None):
        project = self.project()
        return create_promoter(project, access or connect(project, env, counter=counter),
                               store or self.store(counter), clock=clock or self.clock)

    def promote(self, version: str, env: str, **kwargs) -> PromoteResult:
        access = kwargs.pop("access", None)
        clock = kwargs.pop("clock", None)
        return self.promoter(env, access=access, clock=clock).promote(PromoteRequest(version, **kwargs))

    # -- looking at the accounts directly (boto3, each account's own session) -----------------------

    def client(self, env: str, service: str):
        """A boto3 client in account `env` (made once: clients are slow to make)."""
        if (env, service) not in self._clients:
            self._clients[env, service] = self.aws.client(env, service)
        return self._clients[env, service]

    def lam(self, env: str):
        return self.client(env, "lambda")

    def alias(self, env: str, fn: str, alias: str = "live") -> dict:
        return self.lam(env).get_alias(FunctionName=f"shop-{fn}", Name=alias)

    def version_config(self, env: str, fn: str, version: str) -> dict:
        return self.lam(env).get_function_configuration(FunctionName=f"shop-{fn}", Qualifier=version)

    def versions(self, env: str, fn: str) -> list[dict]:
        found = self.lam(env).list_versions_by_function(FunctionName=f"shop-{fn}")["Versions"]
        return [v for v in found if v["Version"] != "$LATEST"]

    def live_code(self, env: str, fn: str) -> str:
        return self.version_config(env, fn, self.alias(env, fn)["FunctionVersion"])["CodeSha256"]

    def release(self, version: str) -> dict:
        s3 = self.client("registry", "s3")
        return json.loads(s3.get_object(Bucket=BUCKET, Key=f"relay/shop/releases/{version}.json")["Body"].read())

    def ledger(self, env: str) -> list[dict]:
        s3 = self.client("registry", "s3")
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"relay/shop/ledger/{env}/").get("Contents", ())
        return [json.loads(s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()) for o in listed]

    def function_names(self, env: str) -> list[str]:
        return sorted(f["FunctionName"] for f in self.lam(env).list_functions()["Functions"])


def new_shop(aws, tmp_path: Path) -> Shop:
    root = tmp_path / "shop"
    write_tree(root, {
        "libs/shared/pyproject.toml": "[project]\nname = 'shared'\nversion = '0'\n",
        "libs/shared/shared/__init__.py": "",
        "libs/shared/shared/money.py": "def cents(amount):\n    return round(amount * 100)\n",
    })
    key = generate_key_file(root / "keys" / "relay.key")
    shop = Shop(root, key, aws)
    for name in FUNCTIONS:
        shop.set_code(name, "a")
    shop.write_config()
    aws.client("registry", "s3").create_bucket(Bucket=BUCKET)
    for env in ("staging", "prod"):
        aws.client(env, "iam").create_role(RoleName="relay-exec", AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                    "Action": "sts:AssumeRole"}]}))
    return shop


def code_sha256(sha256_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(sha256_hex)).decode()


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


class Injected(Exception):
    pass


class FailingLambda:
    """The Lambda seam, failing (or blocking) on chosen calls: `method` for the function named `function_name`.

    Every other call goes through to the real seam (and the moto server).
    """

    def __init__(self, inner, method: str, function_name: str | None = None, *, error=None,
                 block: threading.Event | None = None, entered: threading.Event | None = None) -> None:
        self._inner = inner
        self._method = method
        self._function_name = function_name
        self._error = error
        self._block = block
        self._entered = entered
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def __getattr__(self, name):
        real = getattr(self._inner, name)
        if name != self._method:
            return real

        def call(function_name, *args, **kwargs):
            with self._lock:
                self.calls.append(function_name)
            if self._function_name in (None, function_name):
                if self._entered is not None:
                    self._entered.set()
                if self._block is not None:
                    assert self._block.wait(120), "the test never released the blocked call"
                if self._error is not None:
                    raise self._error
            return real(function_name, *args, **kwargs)

        return call
