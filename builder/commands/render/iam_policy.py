"""`relay iam-policy` as people read it: each document under a comment saying where it goes."""

from __future__ import annotations

import json
from collections.abc import Sequence

from builder.iam_policy import PolicyDocument


def policies_text(documents: Sequence[PolicyDocument]) -> str:
    return "\n\n".join(_one(doc) for doc in documents)


def _one(doc: PolicyDocument) -> str:
    where = f" in account {doc.account}" if doc.account else ""
    return f"# {doc.name}: {doc.kind} policy{where}; attach to {doc.attach_to}\n" + json.dumps(doc.document, indent=2)
