"""The pure parts of relay logs / invoke --env: --since, stream names, canary shares, payloads, the lines people read."""

from __future__ import annotations

import datetime as dt

import pytest

from builder.commands.render.remote import alias_versions, log_line
from builder.errors import UsageError
from builder.remote.invoke import read_payload
from builder.remote.logs import parse_since
from builder.remote.records import LogEvent, stream_version
from builder.remote.target import AliasTarget

NOW = dt.datetime(2026, 11, 30, 12, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(("value", "expected"), [
    ("10m", NOW - dt.timedelta(minutes=10)),
    ("1h", NOW - dt.timedelta(hours=1)),
    ("90s", NOW - dt.timedelta(seconds=90)),
    ("2d", NOW - dt.timedelta(days=2)),
    ("2026-11-30T09:30:00Z", dt.datetime(2026, 11, 30, 9, 30, tzinfo=dt.UTC)),
    ("2026-11-30T09:30:00", dt.datetime(2026, 11, 30, 9, 30, tzinfo=dt.UTC)),  # no zone: UTC
    ("2026-11-30T10:30:00+01:00", dt.datetime(2026, 11, 30, 9, 30, tzinfo=dt.UTC)),
    ("2026-11-30", dt.datetime(2026, 11, 30, tzinfo=dt.UTC)),
])
def test_since(value, expected):
    assert parse_since(value, NOW) == expected


@pytest.mark.parametrize("value", ["yesterday", "10", "-5m", "10 minutes", ""])
def test_since_refuses_what_it_cannot_read(value):
    with pytest.raises(UsageError, match="--since"):
        parse_since(value, NOW)


@pytest.mark.parametrize(("stream", "version"), [
    ("2026/11/30/[3]0123456789abcdef", "3"),
    ("2026/11/30/[12]abc", "12"),
    ("2026/11/30/[$LATEST]abc", "$LATEST"),
    ("my-app/orders/abc", None),  # a stream some other writer named
    ("2026/11/30/[live]abc", None),
])
def test_stream_version(stream, version):
    assert stream_version(stream) == version


def test_canary_shares_and_how_they_read():
    canary = AliasTarget(function="orders", function_name="shop-orders", env="prod", account="333333333333",
                         region="eu-west-1", alias="live", version="3", weights=(("4", 0.1),))
    plain = AliasTarget(function="orders", function_name="shop-orders", env="prod", account="333333333333",
                        region="eu-west-1", alias="live", version="3")

    assert canary.versions == ("3", "4") and canary.share("3") == pytest.approx(0.9) and canary.share("4") == 0.1
    assert alias_versions(canary) == "versions 3 (90%), 4 (10%)"
    assert alias_versions(plain) == "version 3" and plain.to_json()["versions"] == {"3": 1.0}


def test_a_log_line_says_when_in_utc_and_which_version():
    event = LogEvent(timestamp_ms=int(NOW.timestamp() * 1000) + 250, stream="2026/11/30/[7]abc", message="paid\n")

    assert log_line(event) == "2026-11-30 12:00:00.250 [7] paid"
    assert event.to_json()["time"] == "2026-11-30T12:00:00.250000Z"


def test_payloads_are_json_or_text():
    assert read_payload(b'{"a": 1}') == {"a": 1}
    assert read_payload(b'"ok"') == "ok"
    assert read_payload(b"plain text") == "plain text"
    assert read_payload(b"") is None
