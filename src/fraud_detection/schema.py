"""The canonical transaction schema every pipeline, dataset and service speaks.

External tables are mapped onto it with ``ingestion.column_mapping`` in the
parameters; nothing downstream of ingestion sees any other column names.
"""

from __future__ import annotations

from dataclasses import dataclass

TRANSACTION_ID = "transaction_id"
TIMESTAMP = "timestamp"
CUSTOMER_ID = "customer_id"
TERMINAL_ID = "terminal_id"
MERCHANT_CATEGORY = "merchant_category"
AMOUNT = "amount"
CURRENCY = "currency"
COUNTRY = "country"
CHANNEL = "channel"
LABEL = "is_fraud"


@dataclass(frozen=True)
class Column:
    """One column of the transaction schema.

    Attributes:
        name: Canonical column name.
        kind: One of ``int``, ``float``, ``str``, ``datetime``, ``label``.
        required: Whether a source table must provide it. Optional columns get
            ``default`` when absent.
        nullable: Whether a row may hold a missing value (labels may arrive late).
        default: Value used when an optional column is absent from the source.
        description: What the column means, for the docs.
    """

    name: str
    kind: str
    required: bool
    nullable: bool
    default: object = None
    description: str = ""


TRANSACTION_SCHEMA: tuple[Column, ...] = (
    Column(TRANSACTION_ID, "str", True, False, description="Unique id of the transaction."),
    Column(
        TIMESTAMP,
        "datetime",
        True,
        False,
        description="When the transaction happened (UTC, naive).",
    ),
    Column(CUSTOMER_ID, "str", True, False, description="Card or customer id."),
    Column(TERMINAL_ID, "str", True, False, description="Merchant terminal id."),
    Column(MERCHANT_CATEGORY, "str", False, False, "unknown", "Merchant category (MCC group)."),
    Column(
        AMOUNT,
        "float",
        True,
        False,
        description="Amount in the transaction currency, >= 0 (zero-amount card checks exist).",
    ),
    Column(CURRENCY, "str", False, False, "EUR", "ISO 4217 currency code."),
    Column(COUNTRY, "str", False, False, "unknown", "ISO 3166 alpha-2 country of the terminal."),
    Column(CHANNEL, "str", False, False, "unknown", "pos, ecommerce or atm."),
    Column(
        LABEL,
        "label",
        False,
        True,
        description="1 fraud, 0 genuine, null while unknown (labels arrive late).",
    ),
)

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in TRANSACTION_SCHEMA)
CATEGORICAL_COLUMNS: tuple[str, ...] = (MERCHANT_CATEGORY, CURRENCY, COUNTRY, CHANNEL)

# A label message (topic ``transaction_labels``): the transaction it is about, its
# label and when the label became known. Labels arrive days or weeks after their
# transaction, on their own (``fraud_detection.streaming.labels``).
LABEL_TIMESTAMP = "label_timestamp"
LABEL_COLUMNS: tuple[str, ...] = (
    TRANSACTION_ID,
    CUSTOMER_ID,
    TERMINAL_ID,
    TIMESTAMP,
    LABEL,
    LABEL_TIMESTAMP,
)
