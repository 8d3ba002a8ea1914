"""A large invoice-lines CSV for measuring `segmentation run --source invoices` at scale (time and memory, not
segment quality: the customers have no planted behaviour).

Customers first buy at a uniform moment of the two years 2023-01..2024-12 and order again at a gamma-distributed
rate (most rarely, a few often); an order holds 1 + Poisson(lines per order - 1) lines of Zipf-popular products,
1-5 units at lognormal prices. Columns: order_id, customer_id, date (ISO), product_id, quantity, amount.

    .venv/bin/python benchmarks/large_invoices.py --customers 400000 --lines 10000000 --out big.csv
    /usr/bin/time -v .venv/bin/python -m segmentation run --from 2023-01 --to 2024-12 --source invoices \\
        --layout plain --input big.csv --columns invoice=order_id
"""

from __future__ import annotations

import argparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

START = np.datetime64("2023-01-01T00:00")
MINUTES = 2 * 365 * 24 * 60  # the two years, in minutes
ORDERS_PER_CUSTOMER_YEAR = 3.0  # at a gamma rate of 1 (the rates' mean is 0.6)


def generate(customers: int, lines: int, seed: int = 5) -> pa.Table:
    """About `lines` invoice lines of `customers` customers (deterministic given the seed)."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(0.6, 1.0, customers)
    first = rng.integers(0, MINUTES, customers)
    orders = np.maximum(1, rng.poisson(rate * (MINUTES - first) / MINUTES * 2 * ORDERS_PER_CUSTOMER_YEAR))
    customer = np.repeat(np.arange(customers), orders)
    moment = first[customer] + (rng.random(len(customer)) * (MINUTES - first[customer])).astype(np.int64)
    moment[np.r_[0, np.cumsum(orders)[:-1]]] = first  # each customer's first order at its first moment
    per_order = rng.poisson(max(lines // len(customer), 1) - 1, len(customer)) + 1
    order = np.repeat(np.arange(len(customer)), per_order)
    product = rng.zipf(1.3, len(order)) % 20_000
    quantity = rng.integers(1, 6, len(order))
    price = np.round(rng.lognormal(1.5, 0.8, len(order)), 2)
    dates = (START + moment[order].astype("timedelta64[m]")).astype("datetime64[s]")
    return pa.table(
        {
            "order_id": pa.array(order.astype(str)),
            "customer_id": pa.array(np.char.add("C", customer[order].astype(str))),
            "date": pa.array(np.datetime_as_string(dates)),
            "product_id": pa.array(np.char.add("P", product.astype(str))),
            "quantity": quantity,
            "amount": np.round(quantity * price, 2),
        }
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=400_000)
    parser.add_argument("--lines", type=int, default=10_000_000, help="about this many lines")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    table = generate(args.customers, args.lines, args.seed)
    pacsv.write_csv(table, args.out)
    print(f"{table.num_rows} lines, {pc.count_distinct(table['customer_id']).as_py()} customers -> {args.out}")


if __name__ == "__main__":
    main()
