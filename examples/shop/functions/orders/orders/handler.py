"""Validate an order event and price it: subtotal, discount, tax, total."""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from shared.models import Order
from shared.money import as_text, to_cents

# Codes a marketing person can hand out without a deploy would live in a table;
# two fixed ones keep the example self-contained.
DISCOUNTS = {"WELCOME10": Decimal("0.10"), "STAFF25": Decimal("0.25")}


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        order = Order.model_validate(event)
    except ValidationError as exc:
        return {"ok": False, "errors": _errors(exc)}
    if order.discount_code and order.discount_code not in DISCOUNTS:
        return {"ok": False, "errors": [{"field": "discount_code", "message": "unknown discount code"}]}
    return {"ok": True, **price(order, tax_rate=Decimal(os.environ.get("TAX_RATE", "0")))}


def price(order: Order, *, tax_rate: Decimal) -> dict[str, Any]:
    subtotal = order.subtotal
    discount = to_cents(subtotal * DISCOUNTS.get(order.discount_code or "", Decimal(0)))
    # Tax applies to what the customer actually pays, after the discount.
    tax = to_cents((subtotal - discount) * tax_rate)
    return {
        "order_id": order.order_id,
        "currency": order.currency,
        "items": sum(line.quantity for line in order.lines),
        "subtotal": as_text(subtotal),
        "discount": as_text(discount),
        "tax": as_text(tax),
        "total": as_text(subtotal - discount + tax),
    }


def _errors(exc: ValidationError) -> list[dict[str, str]]:
    # Only field and message: pydantic's own error dicts hold the raw input,
    # which may not be JSON-serialisable and should not be echoed back anyway.
    return [
        {"field": ".".join(str(part) for part in err["loc"]), "message": err["msg"]}
        for err in exc.errors(include_url=False)
    ]
