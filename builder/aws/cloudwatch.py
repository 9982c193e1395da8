"""CloudWatch alarms, in typed methods: is anything in ALARM?"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from builder.aws.errors import aws_call
from builder.aws.session import AwsSession
from builder.aws.sts import arn_account
from builder.errors import AwsError

ALARM = "ALARM"
# DescribeAlarms takes at most 100 names per call.
_NAMES_PER_CALL = 100


@attrs.frozen
class AlarmState:
    name: str
    state: str  # "OK" | "ALARM" | "INSUFFICIENT_DATA"
    reason: str = ""

    @property
    def firing(self) -> bool:
        return self.state == ALARM


class CloudWatch:
    def __init__(self, session: AwsSession, *, account: str) -> None:
        self.session = session
        self.account = account
        self._client = session.client("cloudwatch")

    def alarm_states(self, names: Sequence[str]) -> dict[str, AlarmState | None]:
        """The state of each named alarm (metric or composite); None for one that does not exist."""
        found: dict[str, AlarmState | None] = dict.fromkeys(names)
        for start in range(0, len(names), _NAMES_PER_CALL):
            chunk = list(names[start:start + _NAMES_PER_CALL])
            params = {"AlarmNames": chunk, "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]}
            while True:
                with aws_call("cloudwatch:DescribeAlarms", f"alarms {', '.join(chunk)} (account {self.account})"):
                    reply = self._client.describe_alarms(**params)
                for alarm in [*reply.get("MetricAlarms", ()), *reply.get("CompositeAlarms", ())]:
                    self._check_arn(alarm.get("AlarmArn", ""))
                    found[alarm["AlarmName"]] = AlarmState(alarm["AlarmName"], alarm["StateValue"],
                                                           alarm.get("StateReason", ""))
                if not reply.get("NextToken"):
                    break
                params["NextToken"] = reply["NextToken"]
        return found

    def _check_arn(self, arn: str) -> None:
        account = arn_account(arn) if arn else self.account
        if account != self.account:
            raise AwsError(f"cloudwatch alarm {arn} is in account {account}, not {self.account}",
                           hint="The session reached the wrong account: check the environment's role and account.")
