"""STS, in typed methods: who a session really is.

Every environment is reached through its own assumed-role session; before a
single Lambda call relay asks STS which account the session is in and refuses
to go on when it is not the environment's account (a wrong role ARN, a
profile pointing elsewhere), because every later call uses bare function
names that would silently resolve in whatever account the session is in.
"""

from __future__ import annotations

import re

import attrs
from botocore.exceptions import SSOError, TokenRetrievalError

from builder.aws.errors import aws_call
from builder.aws.session import AwsSession, sso_login_needed
from builder.errors import AwsError

_ARN_ACCOUNT = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12}):")


@attrs.frozen
class CallerIdentity:
    account: str
    arn: str
    user_id: str


class Sts:
    def __init__(self, session: AwsSession) -> None:
        self.session = session
        self._client = session.client("sts")

    def caller_identity(self) -> CallerIdentity:
        try:
            with aws_call("sts:GetCallerIdentity", self.session.label):
                reply = self._client.get_caller_identity()
        except AwsError as exc:
            if isinstance(exc.__cause__, SSOError | TokenRetrievalError):
                raise sso_login_needed(exc.__cause__, self.session.target.profile) from exc.__cause__
            raise
        return CallerIdentity(account=reply["Account"], arn=reply["Arn"], user_id=reply.get("UserId", ""))


def base_caller(session: AwsSession) -> CallerIdentity:
    """Who the credentials relay started from are, before the session's role was assumed; asked once per session.

    The environment's session is a role session shared by everyone who
    promotes; this is the person, the CI job or the instance behind it.
    """
    return session.once("base-caller", lambda: Sts(session.base).caller_identity())


def require_account(identity: CallerIdentity, account: str, *, what: str) -> None:
    """Refuse to act through a session that is not in `account`."""
    if identity.account != account:
        raise AwsError(
            f"{what}: the session is in account {identity.account} ({identity.arn}), not {account}",
            hint="Check the environment's role and account in relay.toml, and the credentials relay starts from.",
        )


def arn_account(arn: str) -> str | None:
    """The account id an ARN names (None for an ARN without one, e.g. S3)."""
    match = _ARN_ACCOUNT.match(arn)
    return match.group(1) if match else None
