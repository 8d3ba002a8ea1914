"""Sample writers for tests and benchmarks (not shipped with the library): a small dirty UCI Online Retail file
with its expected cleaning report, monthly rows with rows a validation suite must reject, and monthly rows as
UCI invoice lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from segmentation.sources.invoices import RULES, UCI_LAYOUT


def inject_bad_rows(frame: pd.DataFrame, seed: int = 0, count: int = 3) -> pd.DataFrame:
    """Add rows a validation suite must reject: negative and NaN quantities, a missing shop, a duplicate key."""
    if frame.empty:
        raise ValueError("cannot inject bad rows into an empty frame")
    rng = np.random.default_rng(seed)
    picks = frame.iloc[rng.choice(len(frame), size=count, replace=False)].copy()
    negative = picks.iloc[[0]].assign(sales_qty=-5.0, product_id="PBAD1")
    missing = picks.iloc[[1 % count]].assign(shop_id=None, product_id="PBAD2")
    nan_qty = picks.iloc[[2 % count]].assign(sales_qty=np.nan, product_id="PBAD3")
    duplicate = frame.iloc[[0]]
    return pd.concat([frame, negative, missing, nan_qty, duplicate], ignore_index=True)


def to_uci_invoices(frame: pd.DataFrame) -> pd.DataFrame:
    """Monthly-contract rows as UCI Online Retail invoice lines (one invoice per shop and month), for demos and
    tests of the invoice source with a known ground truth."""
    return pd.DataFrame(
        {
            "InvoiceNo": frame["shop_id"].str[1:] + frame["year"].astype(str) + frame["month"].astype(str).str.zfill(2),
            "StockCode": frame["product_id"],
            "Description": "ITEM " + frame["product_id"],
            "Quantity": frame["sales_qty"].astype(int),
            "InvoiceDate": frame["month"].astype(str) + "/15/" + frame["year"].astype(str) + " 10:00",
            "UnitPrice": (frame["sales_value"] / frame["sales_qty"]).round(2),
            "CustomerID": frame["shop_id"].str[1:].astype(int).astype(str) + ".0",
            "Country": "United Kingdom",
        }
    )


_SAMPLE_CODES = {
    "POST": "POSTAGE",
    "M": "Manual",
    "m": "Manual",
    "BANK CHARGES": "Bank Charges",
    "gift_0001_20": "Dotcomgiftshop Gift Voucher £20.00",
    "DOT": "DOTCOM POSTAGE",
    "C2": "CARRIAGE",
    "AMAZONFEE": "AMAZON FEE",
}
_SAMPLE_COUNTRIES = ("United Kingdom", "United Kingdom", "France", "EIRE", "Germany")
UCI_COLUMNS = list(UCI_LAYOUT.columns.values())


def write_uci_sample(path, n_customers: int = 12, months: int = 3, seed: int = 0) -> dict:
    """Write a small deterministic UCI-layout latin-1 CSV with dirty lines; returns the expected report."""
    rng = np.random.default_rng(seed)
    products = _sample_products(rng)
    good = _sample_good_lines(rng, products, n_customers, months)
    bad, expected = _sample_bad_lines(rng, good)
    lines = pd.concat([good, *bad], ignore_index=True)
    lines = lines.iloc[rng.permutation(len(lines))]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    lines[UCI_COLUMNS].to_csv(path, index=False, encoding="latin-1")
    return {"rows_in": len(lines), **expected, "rows_out": len(good)}


def _sample_products(rng: np.random.Generator, n: int = 30) -> pd.DataFrame:
    codes = [
        f"{c}{s}"
        for c, s in zip(
            rng.choice(np.arange(10_000, 99_999), n, replace=False), rng.choice(["", "", "A", "B"], n), strict=True
        )
    ]
    words = ["MUG", "LANTERN", "HEART", "BUNTING", "TEA SET", "CANDLE", "BAG", "FRAME"]
    names = [f"{rng.choice(['RED', 'WHITE', 'VINTAGE', 'PINK'])} {rng.choice(words)}" for _ in range(n)]
    names[0] = "CAFÉ AU LAIT MUG"
    prices = np.round(rng.uniform(0.29, 12.5, n), 2)
    return pd.DataFrame({"StockCode": codes, "Description": names, "UnitPrice": [f"{p:.2f}" for p in prices]})


def _sample_good_lines(rng, products: pd.DataFrame, n_customers: int, months: int) -> pd.DataFrame:
    rows, invoice = [], 536365
    for c in range(n_customers):
        customer = 12347 + 13 * c
        customer_text = f"{customer}.0" if c % 2 == 0 else str(customer)
        country = _SAMPLE_COUNTRIES[c % len(_SAMPLE_COUNTRIES)]
        for m in range(months):
            year, month = 2010 + (11 + m) // 12, (11 + m) % 12 + 1
            for _ in range(int(rng.integers(1, 3))):
                picks = rng.choice(np.arange(1, len(products)), int(rng.integers(2, 6)), replace=False)
                if invoice == 536365:
                    picks[0] = 0  # the first invoice carries the non-ASCII description
                date = f"{month}/{int(rng.integers(1, 29))}/{year} {int(rng.integers(8, 18))}:{int(rng.integers(0, 60)):02d}"
                for p in picks:
                    product = products.iloc[int(p)]
                    rows.append(
                        {
                            "InvoiceNo": str(invoice),
                            "StockCode": product["StockCode"],
                            "Description": product["Description"],
                            "Quantity": str(int(rng.integers(1, 25))),
                            "InvoiceDate": date,
                            "UnitPrice": product["UnitPrice"],
                            "CustomerID": customer_text,
                            "Country": country,
                        }
                    )
                invoice += 1
    return pd.DataFrame(rows)


def _sample_bad_lines(rng, good: pd.DataFrame) -> tuple[list[pd.DataFrame], dict]:
    """Dirty copies of good lines, each failing one rule (or an earlier rule first)."""
    n = len(good)
    k = max(2, n // 20)

    def pick(count: int) -> pd.DataFrame:
        return good.iloc[rng.choice(n, count, replace=False)].copy()

    cancelled = pick(k)
    cancelled["InvoiceNo"] = "C" + cancelled["InvoiceNo"]
    cancelled["Quantity"] = "-" + cancelled["Quantity"]
    cancelled.iloc[0, cancelled.columns.get_loc("CustomerID")] = ""  # cancelled wins over missing customer
    missing = pick(k)
    missing["CustomerID"] = ""
    missing.iloc[0, missing.columns.get_loc("Quantity")] = "-1"  # missing customer wins over quantity
    negative = pick(k)
    negative["Quantity"] = ["0" if i % 3 == 0 else f"-{q}" for i, q in enumerate(negative["Quantity"])]
    free = pick(k)
    free["UnitPrice"] = "0.00"
    fees = pick(len(_SAMPLE_CODES))
    fees["StockCode"], fees["Description"] = list(_SAMPLE_CODES), list(_SAMPLE_CODES.values())
    duplicates = pick(k)
    expected = dict(zip(RULES, (k, k, k, k, len(_SAMPLE_CODES), k), strict=True))
    return [cancelled, missing, negative, free, fees, duplicates], expected


def dominant_mass_and_far_groups(seed: int = 0) -> np.ndarray:
    """Two near groups that together hold 70% of 2,000 rows, far from two small ones: silhouette sees three clusters,
    the largest 70% (grocery households buying every week: KMeans kept 61-68% in one cluster)."""
    rng = np.random.default_rng(seed)
    centres, sizes = ((0.0, 0.0), (4.0, 0.0), (40.0, 0.0), (0.0, 40.0)), (700, 700, 300, 300)
    return np.concatenate([rng.normal(c, 1.0, (n, 2)) for c, n in zip(centres, sizes, strict=True)])
