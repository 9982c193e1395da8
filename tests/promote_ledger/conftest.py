"""Ledger, gates, diff and IAM fixtures: a registry store in the moto registry account."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The registry tests' helpers make a signed, publishable project; reuse them rather than copy them.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "registry"))

from ledger_helpers import BUCKET, registry_store


@pytest.fixture
def store(aws):
    """The registry bucket (created), as the S3Store relay uses, reached by assuming the registry role."""
    aws.client("registry", "s3").create_bucket(Bucket=BUCKET)
    return registry_store(aws)


@pytest.fixture
def workspace(aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A project wired to the moto registry with staging and prod environments (registry_helpers.Workspace)."""
    from ledger_helpers import new_release_workspace

    monkeypatch.delenv("RELAY_SIGNING_KEY", raising=False)
    return new_release_workspace(aws, tmp_path)
