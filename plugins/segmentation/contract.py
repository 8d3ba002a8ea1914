"""The data contracts, written once: the monthly (shop-month) contract, the invoice-lines contract, the fields an
invoice file is read into, and the source kinds. Plain Python (no pyarrow or pandas), so DAG files can read it.

- monthly contract: one row per (shop_id, product_id, year, month) with sales_qty and, optionally, sales_value
- invoice-lines contract: one cleaned invoice line per row, kept next to the monthly rows for customer features
"""

from __future__ import annotations

# name -> type (pyarrow type names: validate builds the schema from them)
MONTHLY_TYPES = {
    "shop_id": "string",
    "product_id": "string",
    "year": "int64",
    "month": "int64",
    "sales_qty": "float64",
    "sales_value": "float64",
}
MONTHLY_COLUMNS = list(MONTHLY_TYPES)
KEY_COLUMNS = ["shop_id", "product_id", "year", "month"]
REQUIRED_COLUMNS = [*KEY_COLUMNS, "sales_qty"]
OPTIONAL_COLUMNS = ["sales_value"]

INVOICE_LINE_TYPES = {
    "customer_id": "string",
    "invoice_id": "string",
    "invoice_date": "timestamp[us]",
    "product_id": "string",
    "quantity": "float64",
    "value": "float64",
}

# the canonical fields an invoice file's columns are read into (a layout maps its headers onto them)
INVOICE_FIELDS = ("invoice", "product", "description", "quantity", "date", "price", "amount", "customer", "country")

SOURCE_KINDS = ("file", "landing", "kaggle", "invoices", "synthetic")
INVOICE_LAYOUTS = ("uci", "plain")
DEFAULT_KAGGLE_DATASET = "tanulkumarsrivastava/sales-dataset"
