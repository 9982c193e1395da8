"""AWS sessions, one per account relay talks to.

Credentials come from the standard chain (environment, profile, container or
instance role) unless the target carries its own: `relay local`'s sandbox is
handed in explicitly (endpoint and keys in the `AwsTarget`), nothing reads or
writes `os.environ` for it. An exported `AWS_ENDPOINT_URL` is honoured by
boto3 itself, which is how the tests point everything at a moto server. When a
role is given the session assumes it (with an external id when set) and
refreshes the temporary credentials before they expire, so long promotions
keep working.

Profiles: a target's `profile` (an environment's `profile` in relay.toml, else
relay's `--profile`, filled in by the command layer) is used for its base
credentials, and the role is assumed from them; with none, botocore's own
chain applies (AWS_PROFILE, then the default chain). An unknown profile is an
error naming the profile asked for. The session the role was assumed from
stays reachable (`AwsSession.base`): the ledger records who that was.
"""

from __future__ import annotations

import collections
import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound, SSOError, TokenRetrievalError

from builder.aws.credentials import StaticCredentials
from builder.aws.errors import translate
from builder.errors import AwsError

T = TypeVar("T")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/.+$")
# Enough connections for parallel multipart parts and parallel blob uploads.
_MAX_POOL = 32


@attrs.frozen
class AwsTarget:
    """Which credentials to use: a profile, the default chain or explicit keys, optionally a role to assume.

    `endpoint` and `credentials` (both or neither) point the session somewhere
    other than AWS, e.g. the local sandbox; then profiles are not consulted.
    """

    region: str | None = None
    role: str | None = None
    external_id: str | None = None
    profile: str | None = None
    account: str | None = None
    session_name: str = "relay"
    endpoint: str | None = None
    credentials: StaticCredentials | None = None

    @property
    def role_arn(self) -> str | None:
        """The role as an ARN; a bare role name is completed with `account`."""
        if not self.role or self.role.startswith("arn:"):
            return self.role
        if not self.account:
            raise AwsError(f"role {self.role!r} is not an ARN and no account is given",
                           hint="Give the role as arn:aws:iam::<account>:role/<name>.")
        return f"arn:aws:iam::{self.account}:role/{self.role}"

    def at_endpoint(self, endpoint: str, credentials: StaticCredentials, region: str) -> AwsTarget:
        """This target reached at `endpoint` with `credentials` (the local sandbox); `region` only when it has none."""
        return attrs.evolve(self, endpoint=endpoint, credentials=credentials, region=self.region or region, profile=None)

    @property
    def expected_account(self) -> str | None:
        arn = self.role_arn
        match = _ROLE_ARN.match(arn) if arn else None
        return match.group(1) if match else self.account


class RequestCounter:
    """Counts AWS API calls per `service.Operation`, and HTTP attempts (calls plus retries) apart.

    Calls are what a design spends (a no-op publish: one GetObject); attempts
    also count the retries botocore makes on a throttled or dropped request.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: collections.Counter[str] = collections.Counter()
        self._attempts = 0

    def call(self, event_name: str = "", **_: Any) -> None:
        # event_name is "before-call.<service>.<Operation>"; returning None lets the call go on.
        key = event_name.split(".", 1)[1] if "." in event_name else event_name
        with self._lock:
            self._counts[key] += 1

    def attempt(self, **_: Any) -> None:
        with self._lock:
            self._attempts += 1

    def register(self, client: Any) -> None:
        client.meta.events.register("before-call", self.call)
        client.meta.events.register("before-send", self.attempt)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    @property
    def attempts(self) -> int:
        with self._lock:
            return self._attempts

    def by_operation(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))

    def for_service(self, service: str) -> int:
        with self._lock:
            return sum(n for key, n in self._counts.items() if key.startswith(f"{service}."))

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._attempts = 0


class AwsSession:
    """A boto3 session for one account, handing out one shared client per service."""

    def __init__(self, boto: boto3.Session, target: AwsTarget, counter: RequestCounter | None = None,
                 base: AwsSession | None = None) -> None:
        self._boto = boto
        self.target = target
        self.counter = counter
        self._base = base
        self._clients: dict[tuple[str, int | None, int | None], Any] = {}
        self._lock = threading.Lock()
        self._memo: dict[str, Any] = {}
        self._memo_lock = threading.Lock()

    @property
    def base(self) -> AwsSession:
        """The session of the credentials relay started from, before the target's role was assumed (itself without one)."""
        return self._base or self

    def once(self, key: str, compute: Callable[[], T]) -> T:
        """`compute()` the first time `key` is asked of this session, the same answer afterwards (e.g. who it is)."""
        with self._memo_lock:
            if key not in self._memo:
                self._memo[key] = compute()
            return self._memo[key]

    @property
    def account(self) -> str | None:
        return self.target.expected_account

    @property
    def region(self) -> str | None:
        return self._boto.region_name

    @property
    def label(self) -> str:
        """How errors name this session: `account 111111111111` or `default credentials`."""
        if self.account:
            return f"account {self.account}"
        if self.target.endpoint:
            return f"the AWS at {self.target.endpoint}"
        if self.target.profile:
            return f"profile {self.target.profile}"
        return "default credentials"

    def client(self, service: str, *, read_timeout: int | None = None, attempts: int | None = None) -> Any:
        """The session's client for `service` (boto3 clients are thread-safe; sessions are not).

        `read_timeout` (seconds) and `attempts` (in all, the first included) give a client of its own for
        calls that wait long or must never be retried (Lambda's Invoke); otherwise up to 5 attempts.
        """
        key = (service, read_timeout, attempts)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._new_client(service, read_timeout=read_timeout, attempts=attempts)
            return self._clients[key]

    def _new_client(self, service: str, *, read_timeout: int | None, attempts: int | None) -> Any:
        retries = {"mode": "standard", "max_attempts": 5} if attempts is None else {"total_max_attempts": attempts}
        options: dict[str, Any] = {"read_timeout": read_timeout} if read_timeout is not None else {}
        config = Config(retries=retries, max_pool_connections=_MAX_POOL, **options)
        try:
            client = self._boto.client(service, config=config, endpoint_url=self.target.endpoint)
        except BotoCoreError as exc:
            raise translate(exc, operation=f"{service} client", where=self.label) from exc
        if self.counter is not None:
            self.counter.register(client)
        return client


_LOADER_LOCK = threading.Lock()
_SHARED_LOADER: Any = None


def _share_loader(session: botocore.session.Session) -> botocore.session.Session:
    """Every session reads botocore's service models through one loader, which caches them.

    Without it each account's session parses the same JSON models again, which
    costs about 0.1 s per client: most of a promotion's time against moto.
    """
    global _SHARED_LOADER
    with _LOADER_LOCK:
        if _SHARED_LOADER is None:
            _SHARED_LOADER = session.get_component("data_loader")
        else:
            session.register_component("data_loader", _SHARED_LOADER)
    return session


def _dedupe_search_paths() -> None:
    # boto3.Session appends its own data folder to the loader it is given, once per session.
    with _LOADER_LOCK:
        if _SHARED_LOADER is not None:
            paths = _SHARED_LOADER.search_paths
            paths[:] = list(dict.fromkeys(paths))


def open_session(target: AwsTarget = AwsTarget(), *, counter: RequestCounter | None = None) -> AwsSession:
    """A session for `target`: its own keys or the credential chain, then the role assumed when one is given."""
    try:
        core = _core_session(target)
        core.get_scoped_config()  # an unknown profile fails here, not at the first call
        keys = target.credentials
        base = boto3.Session(
            botocore_session=core, region_name=target.region,
            aws_access_key_id=keys.access_key_id if keys else None,
            aws_secret_access_key=keys.secret_access_key if keys else None,
            aws_session_token=keys.session_token if keys else None,
        )
    except ProfileNotFound as exc:
        # The profile botocore looked for: the target's, or AWS_PROFILE's when the target names none.
        asked = exc.kwargs.get("profile") or target.profile
        raise AwsError(f"AWS profile {asked!r} not found",
                       hint="`aws configure list-profiles` lists the profiles there are; check AWS_PROFILE, "
                            "--profile and the environment's profile in relay.toml "
                            "(AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE name the files read).") from exc
    _dedupe_search_paths()
    if not target.role:
        return AwsSession(base, target, counter)
    started_from = AwsSession(base, target, counter)
    assumed = _core_session(target)
    assumed._credentials = _assumed_role_credentials(started_from, target)
    session = boto3.Session(botocore_session=assumed, region_name=base.region_name)
    _dedupe_search_paths()
    return AwsSession(session, target, counter, base=started_from)


def sso_login_needed(exc: Exception, profile: str | None) -> AwsError:
    """A profile whose SSO (IAM Identity Center) login is missing or expired: say which, and how to log in."""
    named = f"AWS profile {profile!r}" if profile else "the AWS profile in use (AWS_PROFILE or default)"
    return AwsError(f"{named}: no valid SSO login ({exc})",
                    hint=f"Run `aws sso login{f' --profile {profile}' if profile else ''}`, then rerun.")


def _core_session(target: AwsTarget) -> botocore.session.Session:
    if target.credentials is None:
        return _share_loader(botocore.session.Session(profile=target.profile))
    # Explicit keys: an exported AWS_PROFILE names no profile of this endpoint, so it is not read.
    return _share_loader(botocore.session.Session(session_vars={"profile": (None, None, None, None)}))


def _assumed_role_credentials(base: AwsSession, target: AwsTarget) -> RefreshableCredentials:
    role_arn = target.role_arn
    assert role_arn is not None
    sts = base.client("sts")
    params: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": target.session_name}
    if target.external_id:
        params["ExternalId"] = target.external_id

    def fetch() -> dict[str, str]:
        try:
            creds = sts.assume_role(**params)["Credentials"]
        except (SSOError, TokenRetrievalError) as exc:
            raise sso_login_needed(exc, target.profile) from exc
        except (ClientError, BotoCoreError) as exc:
            where = f"{role_arn} (from profile {target.profile!r})" if target.profile else role_arn
            raise translate(exc, operation="sts:AssumeRole", where=where) from exc
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    return RefreshableCredentials.create_from_metadata(metadata=fetch(), refresh_using=fetch, method="sts-assume-role")
