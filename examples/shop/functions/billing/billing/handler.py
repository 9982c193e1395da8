"""Work out when an invoice is due, in the business's own time zone."""

from __future__ import annotations

import os
from datetime import date, datetime
from typing import Any

from dateutil import rrule, tz
from dateutil.relativedelta import relativedelta
from pydantic import ValidationError
from shared.models import Invoice
from shared.money import as_text

# Each payment term, as a step from the issue date.
TERMS = {
    "due-on-receipt": relativedelta(),
    "net15": relativedelta(days=+15),
    "net30": relativedelta(days=+30),
    "net60": relativedelta(days=+60),
    # End of the following month: day=31 clamps to the month's last day.
    "eom": relativedelta(months=+1, day=31),
}


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        invoice = Invoice.model_validate(event)
    except ValidationError as exc:
        return {"ok": False, "errors": [{"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in exc.errors()]}
    terms = invoice.terms or os.environ.get("PAYMENT_TERMS", "net30")
    zone = tz.gettz(os.environ.get("BUSINESS_TZ", "UTC"))
    issued = _local_day(invoice.issued_at, zone)
    due = next_business_day(issued + TERMS[terms])
    return {
        "ok": True,
        "invoice_id": invoice.invoice_id,
        "order_id": invoice.order_id,
        "amount": as_text(invoice.amount),
        "currency": invoice.currency,
        "terms": terms,
        "issued_on": issued.isoformat(),
        "due_on": due.isoformat(),
        "days": (due - issued).days,
    }


def next_business_day(day: date) -> date:
    """`day` itself on a weekday, else the Monday after (nobody pays on a Sunday)."""
    weekdays = rrule.rrule(rrule.DAILY, byweekday=(rrule.MO, rrule.TU, rrule.WE, rrule.TH, rrule.FR),
                           dtstart=datetime(day.year, day.month, day.day), count=1)
    return weekdays[0].date()


def _local_day(moment: datetime, zone: Any) -> date:
    # An invoice issued at 02:00 UTC was issued "yesterday" in New York.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz.UTC)
    return moment.astimezone(zone).date()
