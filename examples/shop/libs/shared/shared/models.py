"""The shop's events, validated at the edge of each function."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.money import to_cents

Currency = Literal["USD", "EUR", "GBP"]
# A plain check: pydantic's EmailStr would pull in email-validator and dnspython.
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class _Event(BaseModel):
    # Unknown keys are a caller's mistake worth hearing about, not silently dropped.
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrderLine(_Event):
    sku: str = Field(pattern=r"^[A-Z0-9-]{3,32}$")
    quantity: int = Field(gt=0, le=1000)
    unit_price: Decimal = Field(gt=0, max_digits=10, decimal_places=2)

    @property
    def amount(self) -> Decimal:
        return self.unit_price * self.quantity


class Order(_Event):
    order_id: str = Field(min_length=1, max_length=64)
    customer_email: str = Field(pattern=EMAIL)
    currency: Currency = "USD"
    lines: list[OrderLine] = Field(min_length=1)
    discount_code: str | None = None

    @property
    def subtotal(self) -> Decimal:
        return to_cents(sum((line.amount for line in self.lines), Decimal(0)))


class Invoice(_Event):
    invoice_id: str = Field(min_length=1, max_length=64)
    order_id: str = Field(min_length=1, max_length=64)
    issued_at: datetime
    amount: Decimal = Field(gt=0, max_digits=12, decimal_places=2)
    currency: Currency = "USD"
    terms: Literal["due-on-receipt", "net15", "net30", "net60", "eom"] | None = None


class Message(_Event):
    to: str = Field(pattern=EMAIL)
    subject: str = Field(min_length=1, max_length=200)
    # The body arrives as raw bytes in whatever encoding the sender's system used.
    body_base64: str

    @field_validator("body_base64")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("body is empty")
        return value
