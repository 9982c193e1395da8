"""IAM roles, for preparing a local sandbox (`relay local up`)."""

from __future__ import annotations

import json

from botocore.exceptions import ClientError

from builder.aws.errors import aws_call, error_code
from builder.aws.session import AwsSession

_TRUST_ANY_ACCOUNT_ROLE = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
}
_TRUST_LAMBDA = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


class Iam:
    def __init__(self, session: AwsSession) -> None:
        self.session = session
        self._client = session.client("iam")

    def ensure_role(self, name: str, *, for_lambda: bool = False) -> str:
        """The role's ARN, creating the role when it does not exist."""
        trust = _TRUST_LAMBDA if for_lambda else _TRUST_ANY_ACCOUNT_ROLE
        try:
            return self._client.get_role(RoleName=name)["Role"]["Arn"]
        except ClientError as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
        with aws_call("iam:CreateRole", f"role {name} ({self.session.label})"):
            return self._client.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
