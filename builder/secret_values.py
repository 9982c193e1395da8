"""Values that look like credentials: relay.toml holds references to secrets, never secrets.

An environment variable may name where a secret lives (an SSM parameter or
Secrets Manager ARN, an SSM parameter path), which the function reads at run
time. A value that looks like the secret itself (an AWS access key id or secret
access key, a PEM private key, credentials in a URL, `password=...`, or any
value of a variable named like a password, secret or token that is not a
reference) is refused with its key path; the value is never echoed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from builder.errors import ConfigError

_REFERENCE = re.compile(r"^(arn:aws[a-z-]*:(ssm|secretsmanager|kms):|/|ssm:|secretsmanager:|\{\{resolve:)")
_CHECKS = (
    ("an AWS access key id", re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b")),
    ("a PEM private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("credentials in a URL", re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@")),
    ("a password or token parameter", re.compile(r"(?i)\b(password|passwd|pwd|secret|token|api_?key)=[^&;\s]+")),
)
_SECRET_ACCESS_KEY = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_SECRET_NAME = re.compile(r"(?i)(PASSWORD|PASSWD|SECRET|SECRET_KEY|SECRET_ACCESS_KEY|API_KEY|APIKEY|TOKEN|PRIVATE_KEY)$")


def credential_kind(name: str, value: str) -> str | None:
    """What `value` (of a variable `name`) looks like, when it looks like a credential; None otherwise."""
    if not value or _REFERENCE.match(value):
        return None
    for kind, pattern in _CHECKS:
        if pattern.search(value):
            return kind
    for candidate in _SECRET_ACCESS_KEY.findall(value):
        if any(c.isupper() for c in candidate) and any(c.islower() for c in candidate) and any(c.isdigit() for c in candidate):
            return "an AWS secret access key"
    if _SECRET_NAME.search(name):
        return f"a secret (the variable's name ends in {_SECRET_NAME.search(name).group(1).upper()})"  # type: ignore[union-attr]
    return None


def refuse_credentials(variables: Mapping[str, str], key: str, where: str) -> None:
    """ConfigError (exit 3) naming `key.<VARIABLE>` when a value looks like a credential."""
    for name, value in variables.items():
        kind = credential_kind(name, value)
        if kind:
            raise ConfigError(
                f"{where}: {key}.{name} looks like {kind}; relay.toml never holds secrets (the value is not shown)",
                hint=f"Store it in SSM Parameter Store or Secrets Manager and set {name} to its ARN; "
                     "the function reads it at run time.",
            )


def refuse_all(items: Iterable[tuple[str, Mapping[str, str]]], where: str) -> None:
    for key, variables in items:
        refuse_credentials(variables, key, where)
