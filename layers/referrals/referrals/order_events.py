"""Order events as the commerce system puts them on EventBridge (source `commerce.orders`): Powertools parser
models, strict where money is concerned (amounts are decimal strings; a JSON number is refused, never read
as a float). Imported only by the order-events function: pydantic stays out of the other functions' cold start.
"""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal
from typing import Annotated, Literal

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from referrals.rewards import FactKind, OrderFact

SOURCE = "commerce.orders"

# Up to 12 digits and 4 decimals: enough for any price, refused before it can overflow anything.
DecimalText = Annotated[str, StringConstraints(pattern=r"^\d{1,12}(\.\d{1,4})?$")]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
# Identifiers from another system: bounded, printable (no control characters to smuggle into logs or keys).
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]

# An order id becomes part of DynamoDB keys: percent-quoted in a fact's sort key (`ORDER#<quoted>#REFUND#<32 hex>`,
# up to three times its UTF-8 size) and as is in an outbox key (`EVENT#ReferralQualified:<friend>:<order>`). A sort
# key holds at most 1,024 bytes, and 128 characters of 4 UTF-8 bytes quote to 1,536: so an order id is bounded by
# its encoded size too, 200 bytes of UTF-8 (quoted at most 600, its fact's key at most 646 bytes), refused here as
# malformed (dead-lettered) rather than failing at the write.
MAX_ORDER_ID_BYTES = 200


def _fits_a_key(value: str) -> str:
    if len(value.encode("utf-8")) > MAX_ORDER_ID_BYTES:
        raise ValueError(f"at most {MAX_ORDER_ID_BYTES} bytes of UTF-8")
    return value


OrderId = Annotated[Identifier, AfterValidator(_fits_a_key)]


class Money(BaseModel):
    model_config = ConfigDict(frozen=True, strict=True)

    amount: DecimalText
    currency: CurrencyCode

    @property
    def value(self) -> Decimal:
        return Decimal(self.amount)


class OrderRef(BaseModel):
    model_config = ConfigDict(frozen=True, strict=True)

    orderId: OrderId  # noqa: N815 - the event's field name
    customerId: Identifier  # noqa: N815


class OrderPlacedDetail(OrderRef):
    total: Money


class OrderCancelledDetail(OrderRef):
    pass


class OrderRefundedDetail(OrderRef):
    refund: Money
    # Not in the contract's shape, but honoured when given: two equal partial refunds need distinct ids.
    refundId: Identifier | None = None  # noqa: N815


class _OrderEvent(EventBridgeModel):
    source: Literal["commerce.orders"]  # type: ignore[assignment]


class OrderPlacedEvent(_OrderEvent):
    detail_type: Literal["OrderPlaced"] = Field(alias="detail-type")  # type: ignore[assignment]
    detail: OrderPlacedDetail  # type: ignore[assignment]


class OrderCancelledEvent(_OrderEvent):
    detail_type: Literal["OrderCancelled"] = Field(alias="detail-type")  # type: ignore[assignment]
    detail: OrderCancelledDetail  # type: ignore[assignment]


class OrderRefundedEvent(_OrderEvent):
    detail_type: Literal["OrderRefunded"] = Field(alias="detail-type")  # type: ignore[assignment]
    detail: OrderRefundedDetail  # type: ignore[assignment]


OrderEvent = TypeAdapter(
    Annotated[OrderPlacedEvent | OrderCancelledEvent | OrderRefundedEvent, Field(discriminator="detail_type")]
)


def parse_order_event(event: object) -> OrderFact:
    """The fact an EventBridge order event states. Raises pydantic's ValidationError when it is malformed."""
    parsed = parse(event=event, model=OrderEvent)  # type: ignore[arg-type]
    at = parsed.time if parsed.time.tzinfo else parsed.time.replace(tzinfo=UTC)
    detail = parsed.detail
    common = {"order_id": detail.orderId, "customer_id": detail.customerId, "at": at, "event_id": parsed.id}
    if isinstance(parsed, OrderPlacedEvent):
        total = parsed.detail.total
        return OrderFact(FactKind.PLACED, amount=total.value, currency=total.currency, **common)
    if isinstance(parsed, OrderRefundedEvent):
        refund = parsed.detail.refund
        return OrderFact(
            FactKind.REFUNDED,
            amount=refund.value,
            currency=refund.currency,
            refund_id=parsed.detail.refundId,
            **common,
        )
    return OrderFact(FactKind.CANCELLED, **common)
