"""Access keys handed to a session explicitly (the local sandbox's), instead of the credential chain.

Kept apart from `session.py` so that code describing where AWS is (the
sandbox's state) does not import boto3.
"""

from __future__ import annotations

import attrs


@attrs.frozen(repr=False)
class StaticCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:  # the secret never reaches a log or a traceback
        return f"StaticCredentials(access_key_id={self.access_key_id!r}, secret_access_key=***)"
