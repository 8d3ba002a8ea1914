"""The report's first part, for the people who act on the segments: one card per segment, the movements since
last month, and each segment's top products. Plain pandas over the lake; HTML with inline CSS and SVG.

- Cards: the segment's name, how many shops (customers for invoice data) and their share, its share of the
  month's revenue (sales value; volume when the data has no values), the few medians that define it in real
  units (customers: orders, spend, order value, days since the last order, days between orders, products; shops:
  units a month, sales value a month, months with sales, trend, season, last sale), and its movements.
- Movements: every shop scored this month and last month (scores/month=M and M-1), from where to where; new
  (not scored last month), no longer scored (left the feature window), and lapsed (moved into a lapsed
  lifecycle segment).
- Top products: the month's raw partition (the monthly contract) of the segment's shops, by their share of the
  segment's revenue (or volume), with the lift against all shops.
"""

from __future__ import annotations

import calendar
import html
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..lake.storage import Lake, month_ref
from ..model.lifecycle import LAPSED_CUSTOMER, LAPSED_SHOP, ONE_TIME_LAPSED, ONE_TIME_LAPSED_HIGHER, RESERVED_IDS
from ..model.profiles import SEASONAL_AMPLITUDE, peak_month
from ..months import add_months

TOP_PRODUCTS = 5
LAPSED_IDS = (ONE_TIME_LAPSED, ONE_TIME_LAPSED_HIGHER, LAPSED_CUSTOMER, LAPSED_SHOP)
NEW, GONE = "new", "gone"  # the Sankey's extra nodes: not scored last month / not scored this month
PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#3b5ba5",
    "#e8590c",
    "#0b7a75",
    "#b5179e",
    "#6a994e",
    "#c9184a",
    "#5f0f40",
]
LIFECYCLE_PALETTE = ["#8d99ae", "#a3a380", "#b08968", "#6c757d", "#adb5bd", "#9c8f8f", "#7d8597", "#b7b7a4"]


def segment_colour(segment_id: int) -> str:
    """A fixed colour per id: model segments from a bright palette, lifecycle segments in muted tones, noise grey."""
    if segment_id == -1:
        return "#c8c8c8"
    if segment_id in RESERVED_IDS:
        return LIFECYCLE_PALETTE[segment_id % len(LIFECYCLE_PALETTE)]
    return PALETTE[segment_id % len(PALETTE)]


@dataclass
class Card:
    segment_id: int
    name: str
    shops: int
    shop_share: float
    measure_share: float  # of the month's revenue (or volume)
    profile: list[tuple[str, str]]
    kind: str  # "model", "lifecycle" or "noise"
    joined: int = 0  # from another segment since last month
    left: int = 0  # to another segment
    new: int = 0  # not scored last month
    products: pd.DataFrame = field(default_factory=pd.DataFrame)  # product_id, share, lift


@dataclass
class BusinessView:
    month: str
    customers: bool  # invoice data: "customers", else "shops"
    measure: str  # "revenue" or "volume"
    total_measure: float
    buyers: int  # scored shops with sales this month
    cards: list[Card]
    movements: dict | None  # None when last month has no scores

    @property
    def noun(self) -> str:
        return "customers" if self.customers else "shops"


# numbers in words -----------------------------------------------------------------------------------------
def number(value: float) -> str:
    """12,345 / 123 / 12.5 / 1.25; a dash when missing."""
    if value is None or not math.isfinite(float(value)):
        return "–"
    value = float(value)
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}".removesuffix(".0")
    return f"{value:.2f}".rstrip("0").rstrip(".")


def amount(value: float) -> str:
    """Money-like amounts: 1.2M, 45.3k, 812."""
    if value is None or not math.isfinite(float(value)):
        return "–"
    value = float(value)
    for limit, unit, suffix in ((1e9, 1e9, "bn"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if abs(value) >= limit:
            return f"{value / unit:.1f}{suffix}"
    return number(value)


def days(value: float) -> str:
    return "–" if value is None or not math.isfinite(float(value)) else f"{float(value):,.0f}"


def percent(share: float, digits: int = 1) -> str:
    if share is None or not math.isfinite(float(share)):
        return "–"
    return f"{100 * share:.{digits}f}%"


def signed_percent(change: float) -> str:
    return "–" if not math.isfinite(change) else f"{'+' if change >= 0 else '−'}{abs(100 * change):.0f}%"


# profiles in real units ------------------------------------------------------------------------------------
# the feature columns the business view reads (with shop_id): the report reads only these and the model's
PROFILE_COLUMNS = (
    *("orders", "spend", "aov", "recency_days", "gap_days", "products"),  # customers
    *("log_level", "log_mean_value", "active_share", "active_slope", "season_amp_cos", "season_amp_sin"),  # shops
    "recency_months",
)


def _median(frame: pd.DataFrame, column: str) -> float:
    if column not in frame:
        return math.nan
    values = pd.to_numeric(frame[column], errors="coerce").dropna()
    return float(values.median()) if len(values) else math.nan


def customer_profile(members: pd.DataFrame) -> list[tuple[str, str]]:
    """Median customer of the segment, over the feature window: orders, spend, order value, recency, gap, range."""
    gap = _median(members, "gap_days")
    return [
        ("orders", number(_median(members, "orders"))),
        ("spend", amount(_median(members, "spend"))),
        ("average order", amount(_median(members, "aov"))),
        ("days since last order", days(_median(members, "recency_days"))),
        ("days between orders", days(gap) if math.isfinite(gap) else "one order"),
        ("products bought", number(_median(members, "products"))),
    ]


def _expm1(value: float) -> float:
    return math.expm1(value) if math.isfinite(value) else math.nan


def shop_profile(members: pd.DataFrame, has_values: bool) -> list[tuple[str, str]]:
    """Median shop of the segment: units and value a month, how often it sells, trend, season, last sale."""
    rows = [("units a month when selling", number(_expm1(_median(members, "log_level"))))]
    if has_values:
        rows.append(("sales value a month", amount(_expm1(_median(members, "log_mean_value")))))
    rows.append(("months with sales", percent(_median(members, "active_share"), 0)))
    slope = _median(members, "active_slope")
    rows.append(("trend", f"{signed_percent(math.expm1(12 * slope))} a year" if math.isfinite(slope) else "–"))
    cos, sin = _median(members, "season_amp_cos"), _median(members, "season_amp_sin")
    amplitude = math.hypot(cos, sin) if math.isfinite(cos) and math.isfinite(sin) else 0.0
    season = "no clear season"
    if amplitude > SEASONAL_AMPLITUDE:
        season = f"peaks in {calendar.month_name[peak_month(cos, sin)]} (+{100 * math.expm1(amplitude):.0f}%)"
    rows.append(("season", season))
    recency = _median(members, "recency_months")
    rows.append(
        (
            "last sale",
            "–" if not math.isfinite(recency) else "this month" if recency < 0.5 else f"{number(recency)} months ago",
        )
    )
    return rows


# the month's raw rows: revenue shares and top products -----------------------------------------------------
def month_sales(lake: Lake, month: str) -> tuple[pd.DataFrame, str]:
    """shop_id, product_id, measure for the month's raw partition; the measure is sales value when the month has
    values, else quantity."""
    table = lake.read_table(month_ref("raw", month), columns=["shop_id", "product_id", "sales_qty", "sales_value"])
    columns = set(table.column_names)
    has_value = "sales_value" in columns and table["sales_value"].null_count < len(table)
    column = "sales_value" if has_value else "sales_qty"
    frame = table.select(["shop_id", "product_id", column]).to_pandas()
    frame = frame.rename(columns={column: "measure"})
    frame["measure"] = pd.to_numeric(frame["measure"], errors="coerce").fillna(0.0)
    return frame, "revenue" if has_value else "volume"


def _as_text(ids) -> pa.Array:
    array = pa.array(ids) if not isinstance(ids, pa.ChunkedArray) else ids.combine_chunks()
    return array if pa.types.is_large_string(array.type) else array.cast(pa.large_string())


def _same_ids(ids: pa.Array, reference: pa.Array) -> bool:
    if len(ids) != len(reference) or ids.null_count or reference.null_count:
        return False
    return bool(pc.all(pc.equal(ids, reference)).as_py() is not False)


def rows_in(ids, reference) -> np.ndarray:
    """For each id, its row in reference (-1 where reference has none); ids compared as text. A hash lookup in
    Arrow: pandas' joins and isin on 1M string ids take seconds."""
    ids, reference = _as_text(ids), _as_text(reference)
    if _same_ids(ids, reference):  # features and scores hold the same shops in the same order
        return np.arange(len(ids), dtype=np.int64)
    found = pc.index_in(ids, value_set=reference)
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def segments_at(rows: np.ndarray, segment_of: pd.Series) -> np.ndarray:
    """The segment id at each row of segment_of (rows from rows_in), -1 where the row is -1."""
    segments = segment_of.to_numpy().astype(np.int64)
    if not len(segments):
        return np.full(len(rows), -1, dtype=np.int64)
    return np.where(rows >= 0, segments[np.maximum(rows, 0)], -1)


def top_products(sales: pd.DataFrame, segment_of: pd.Series, n: int = TOP_PRODUCTS) -> dict[int, pd.DataFrame]:
    """Per segment: its n biggest products by share of the segment's revenue (volume) this month, and their lift
    (that share over the product's share of all shops' revenue). Ties go to the smaller product id."""
    rows = rows_in(sales["shop_id"], segment_of.index)
    return top_products_of_rows(sales, segments_at(rows, segment_of), rows >= 0, n)


def top_products_of_rows(
    sales: pd.DataFrame, segment_per_row: np.ndarray, scored: np.ndarray, n: int = TOP_PRODUCTS
) -> dict[int, pd.DataFrame]:
    """top_products with each sales row's segment given (scored: the rows whose shop has one)."""
    if not scored.any():
        return {}
    product_codes, product_ids = pd.factorize(sales["product_id"], sort=True)
    products, measure = product_codes[scored], sales["measure"].to_numpy(dtype=float)[scored]
    segment_codes, segment_ids = pd.factorize(segment_per_row[scored].astype(np.int64), sort=True)  # hashed, no sort
    # one dense segments x products table by bincount: a pandas groupby over millions of sales rows took seconds
    cells = segment_codes * len(product_ids) + products
    shape = (len(segment_ids), len(product_ids))
    totals = np.bincount(cells, weights=measure, minlength=shape[0] * shape[1]).reshape(shape)
    sold = np.bincount(cells, minlength=shape[0] * shape[1]).reshape(shape) > 0
    overall = totals.sum(axis=0)
    overall_share = overall / overall.sum() if overall.sum() > 0 else overall * 0
    codes = np.arange(len(product_ids))
    result = {}
    for segment_id, row, present in zip(segment_ids, totals, sold, strict=True):
        total = row.sum()
        if total <= 0:
            continue
        top = codes[present][np.lexsort((codes[present], -row[present]))][:n]  # by measure, then product id
        share = row[top] / total
        base = overall_share[top]
        result[int(segment_id)] = pd.DataFrame(
            {
                "product_id": np.asarray(product_ids[top]).astype(str),
                "share": share,
                "lift": np.divide(share, base, out=np.full(len(share), np.nan), where=base > 0),
            }
        )
    return result


# movements since last month --------------------------------------------------------------------------------
def movements(current: pd.DataFrame, previous: pd.DataFrame | None) -> dict | None:
    """Who moved where between last month's scores and this month's (shop_id, segment_id, segment_name each)."""
    if previous is None:
        return None
    now, before = current["segment_id"].to_numpy(np.int64), previous["segment_id"].to_numpy(np.int64)
    row_before = rows_in(current["shop_id"], previous["shop_id"])
    kept = row_before >= 0
    both = pd.DataFrame({"source": before[row_before[kept]], "target": now[kept]})
    flows = both.groupby(["source", "target"]).size().rename("shops").reset_index()
    new_counts = pd.Series(now[~kept]).value_counts().sort_index().rename_axis("segment_id").rename("shops")
    new_counts = new_counts.reset_index()
    still_here = np.zeros(len(before), dtype=bool)
    still_here[row_before[kept]] = True  # a month's scores hold each shop once, so this is the reverse lookup
    gone_ids = before[~still_here]
    gone_counts = pd.Series(gone_ids).value_counts().sort_index().rename_axis("segment_id_before").rename("shops")
    gone_counts = gone_counts.reset_index()
    flows = pd.concat(
        [
            flows,
            pd.DataFrame({"source": NEW, "target": new_counts["segment_id"], "shops": new_counts["shops"]}),
            pd.DataFrame({"source": gone_counts["segment_id_before"], "target": GONE, "shops": gone_counts["shops"]}),
        ],
        ignore_index=True,
    ).astype({"source": object, "target": object})
    flows["source"] = [v if v == NEW else int(v) for v in flows["source"]]
    flows["target"] = [v if v == GONE else int(v) for v in flows["target"]]
    flows["shops"] = flows["shops"].astype("int64")
    same = both["target"] == both["source"]
    lapsed_now, lapsed_before = both["target"].isin(LAPSED_IDS), both["source"].isin(LAPSED_IDS)
    names_before = {int(k): v for k, v in previous.groupby("segment_id")["segment_name"].first().items()}
    return {
        "flows": flows,
        "stayed": int(same.sum()),
        "moved": int((~same).sum()),
        "new": int((~kept).sum()),
        "gone": len(gone_ids),
        "lapsed": int((lapsed_now & ~lapsed_before).sum()),
        "names_before": names_before,
        "models": (_model_of(previous), _model_of(current)),
    }


def _model_of(scores: pd.DataFrame) -> str | None:
    versions = scores["model_version"].dropna().unique() if "model_version" in scores else []
    return str(versions[0]) if len(versions) == 1 else None


def _segment_moves(moves: dict | None, segment_id: int) -> tuple[int, int, int]:
    """(joined from another segment, left to another segment, new) for one segment id."""
    if moves is None:
        return 0, 0, 0
    flows = moves["flows"]
    source, target = flows["source"], flows["target"]
    both = (source != NEW) & (target != GONE)
    joined = int(flows.loc[both & (target == segment_id) & (source != segment_id), "shops"].sum())
    left = int(flows.loc[(source == segment_id) & (target != segment_id), "shops"].sum())
    new = int(flows.loc[(source == NEW) & (target == segment_id), "shops"].sum())
    return joined, left, new


# the view --------------------------------------------------------------------------------------------------
SCORE_COLUMNS = ["shop_id", "segment_id", "segment_name", "model_version"]  # of a scores table, all the view reads


def business_view(lake: Lake, month: str, scores: pd.DataFrame, features: pd.DataFrame) -> BusinessView:
    """Cards, movements and top products for the month (scores: the month's scores/month=M table)."""
    customers = "orders" in features.columns and features["orders"].notna().any()
    sales, measure = month_sales(lake, month)
    segment_of = pd.Series(scores["segment_id"].to_numpy(), index=scores["shop_id"].astype(str))
    row_of_sale = rows_in(sales["shop_id"], segment_of.index)
    scored = row_of_sale >= 0
    values = sales["measure"].to_numpy(dtype=float)
    total = float(values.sum())
    segment_of_sale = segments_at(row_of_sale, segment_of)
    per_segment = pd.Series(values[scored]).groupby(segment_of_sale[scored]).sum()
    per_scored_shop = np.bincount(row_of_sale[scored], weights=values[scored], minlength=len(segment_of))
    products = top_products_of_rows(sales, segment_of_sale, scored)
    previous_ref = month_ref("scores", add_months(month, -1))
    has_previous = lake.has_partition(previous_ref)
    previous = lake.read_table(previous_ref, columns=SCORE_COLUMNS).to_pandas() if has_previous else None
    moves = movements(scores, previous)
    row_of_feature = rows_in(features["shop_id"], segment_of.index)
    found = row_of_feature >= 0
    profiled = features[[c for c in PROFILE_COLUMNS if c in features]]  # grouping fewer columns is faster
    members = (profiled if found.all() else profiled[found]).assign(
        segment_id=segments_at(row_of_feature, segment_of)[found]
    )
    has_values = bool(customers or (features.get("log_mean_value", pd.Series([0.0])).fillna(0) > 0).any())
    names = scores.groupby("segment_id")["segment_name"].first()
    cards = []
    for segment_id, group in members.groupby("segment_id"):
        segment_id = int(segment_id)
        kind = "noise" if segment_id == -1 else "lifecycle" if segment_id in RESERVED_IDS else "model"
        joined, left, new = _segment_moves(moves, segment_id)
        cards.append(
            Card(
                segment_id=segment_id,
                name=str(names.get(segment_id, f"Segment {segment_id}")),
                shops=len(group),
                shop_share=len(group) / len(scores),
                kind=kind,
                measure_share=float(per_segment.get(segment_id, 0.0)) / total if total > 0 else 0.0,
                profile=customer_profile(group) if customers else shop_profile(group, has_values),
                joined=joined,
                left=left,
                new=new,
                products=products.get(segment_id, pd.DataFrame()),
            )
        )
    cards.sort(key=lambda c: (-c.shops, c.segment_id))
    buyers = int((per_scored_shop > 0).sum())
    return BusinessView(month, customers, measure, total, buyers, cards, moves)


# HTML ------------------------------------------------------------------------------------------------------
STYLE = """
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(290px,1fr));gap:14px;margin:1em 0 2em}
.card{border:1px solid #ddd;border-radius:8px;padding:12px 14px;background:#fff;box-shadow:0 1px 2px #0001;
 border-top:5px solid var(--c)}
.card h3{margin:0;font-size:16px}.card .sid{color:#777;font-size:11px}
.card .kpis{display:flex;gap:14px;margin:8px 0}.card .kpis div{flex:1}
.card .kpis b{display:block;font-size:18px}.card .kpis small{color:#666;font-size:11px}
.card dl{display:grid;grid-template-columns:auto auto;gap:2px 10px;margin:6px 0;font-size:13px}
.card dt{color:#555}.card dd{margin:0;text-align:right;font-variant-numeric:tabular-nums}
.card .moves{font-size:12px;color:#444;margin:6px 0}.card h4{margin:8px 0 4px;font-size:12px;color:#555}
.card ol{margin:0;padding:0;list-style:none;font-size:12px}
.card li{position:relative;padding:1px 4px;margin:1px 0;display:flex;justify-content:space-between}
.card li .bar{position:absolute;left:0;top:0;bottom:0;background:var(--c);opacity:.18;border-radius:2px}
.card li span{position:relative}
.summary{font-size:14px}.note{background:#fff8e1;border-left:4px solid #f0b400;padding:6px 10px;font-size:13px}.moves-summary li{margin:2px 0}
table.matrix{border-collapse:collapse;font-size:11px;margin:1em 0}
table.matrix th,table.matrix td{border:1px solid #e4e4e4;padding:2px 5px;text-align:right}
table.matrix th{background:#fafafa;font-weight:normal;max-width:90px}table.matrix td.same{font-weight:bold}
svg.sankey text{font-size:11px;font-family:sans-serif}
"""


def _signed(count: int, sign: str) -> str:
    return f"{sign}{count:,}" if count else "0"


def _lift(lift: float) -> str:
    if not math.isfinite(lift):
        return ""
    return " · >99x" if lift > 99 else f" · {lift:.1f}x"


def _card_html(card: Card, view: BusinessView) -> str:
    colour = segment_colour(card.segment_id)
    kind = {"model": "segment", "lifecycle": "lifecycle rule", "noise": "atypical"}[card.kind]
    profile = "".join(f"<dt>{html.escape(label)}</dt><dd>{html.escape(value)}</dd>" for label, value in card.profile)
    moves = ""
    if view.movements is not None:
        moves = (
            f'<p class="moves">since last month: <b>{_signed(card.joined, "+")}</b> from other segments, '
            f"<b>{_signed(card.left, '−')}</b> to others, <b>{card.new:,}</b> new</p>"
        )
    products = "<p class='moves'>no sales this month</p>"
    if not card.products.empty:
        top = card.products["share"].max()
        items = "".join(
            f'<li><span class="bar" style="width:{100 * row.share / top:.0f}%"></span>'
            f"<span>{html.escape(row.product_id)}</span><span>{percent(row.share)}"
            f"{_lift(row.lift)}</span></li>"
            for row in card.products.itertuples()
        )
        products = f"<ol>{items}</ol>"
    return (
        f'<article class="card" data-segment="{card.segment_id}" style="--c:{colour}">'
        f'<h3>{html.escape(card.name)}</h3><span class="sid">#{card.segment_id} · {kind}</span>'
        f'<div class="kpis"><div><b>{card.shops:,}</b><small>{view.noun}</small></div>'
        f"<div><b>{percent(card.shop_share)}</b><small>of {view.noun}</small></div>"
        f"<div><b>{percent(card.measure_share)}</b><small>of {view.measure}</small></div></div>"
        f"<dl>{profile}</dl>{moves}"
        f"<h4>Top products (share of the segment's {view.measure} · lift vs all)</h4>{products}</article>"
    )


def _sides(flows: pd.DataFrame, order: list[int]) -> tuple[list, list]:
    """Left nodes (last month's segments in the cards' order, then those gone this month, then new) and right nodes
    (this month's segments in the cards' order, then no longer scored)."""
    sources, targets = set(flows["source"]), set(flows["target"])
    left = [s for s in order if s in sources] + sorted(s for s in sources if s not in order and s != NEW)
    right = [s for s in order if s in targets]
    return left + ([NEW] if NEW in sources else []), right + ([GONE] if GONE in targets else [])


def _sankey(
    view: BusinessView, width: int = 960, label_space: int = 210, gap: int = 4, bands: int = 420, min_slot: int = 15
) -> str:
    """Inline SVG: last month's segments (and new) on the left, this month's (and no longer scored) on the right."""
    flows = view.movements["flows"]
    names_now = {c.segment_id: c.name for c in view.cards}
    order = [c.segment_id for c in view.cards]
    left_ids, right_ids = _sides(flows, order)
    left_size = flows.groupby("source")["shops"].sum()
    right_size = flows.groupby("target")["shops"].sum()
    scale = bands / max(int(left_size.sum()), int(right_size.sum()), 1)  # pixels per shop

    def layout(ids, sizes):
        """Each node gets a slot of at least min_slot pixels (room for its label), its bar centred in it."""
        positions, y = {}, 10.0
        for node in ids:
            h = sizes.get(node, 0) * scale
            slot = max(h, min_slot)
            top = y + (slot - h) / 2
            positions[node] = [top, top, y + slot / 2]  # bar top, next free offset for bands, label centre
            y += slot + gap
        return positions, y + 10

    (left, left_height), (right, right_height) = layout(left_ids, left_size), layout(right_ids, right_size)
    height = int(max(left_height, right_height))
    x0, x1, bar = label_space, width - label_space, 12
    label = {NEW: "not scored last month", GONE: "no longer scored"}

    def name(node, side):
        if node in label:
            return label[node]
        if side == "left":
            return view.movements["names_before"].get(node, names_now.get(node, str(node)))
        return names_now.get(node, str(node))

    parts = [
        f'<svg class="sankey" role="img" aria-label="Movements since last month" viewBox="0 0 {width} {height}" '
        f'width="100%" xmlns="http://www.w3.org/2000/svg">'
    ]
    ordered = flows.assign(_l=flows["source"].map(left_ids.index), _r=flows["target"].map(right_ids.index))
    for flow in ordered.sort_values(["_l", "_r"]).itertuples():
        thickness = flow.shops * scale
        y_left = left[flow.source][1]
        y_right = right[flow.target][1]
        left[flow.source][1] += thickness
        right[flow.target][1] += thickness
        colour = "#999" if flow.source == NEW else segment_colour(flow.source)
        opacity = 0.2 if flow.source == flow.target else 0.55
        mid = (x0 + bar + x1) / 2
        a, b = y_left + thickness / 2, y_right + thickness / 2
        parts.append(
            f'<path d="M{x0 + bar},{a:.1f} C{mid},{a:.1f} {mid},{b:.1f} {x1},{b:.1f}" fill="none" '
            f'stroke="{colour}" stroke-opacity="{opacity}" stroke-width="{max(thickness, 0.5):.1f}">'
            f"<title>{html.escape(name(flow.source, 'left'))} → {html.escape(name(flow.target, 'right'))}: "
            f"{flow.shops:,}</title></path>"
        )
    for side, ids, positions, sizes, x in (
        ("left", left_ids, left, left_size, x0),
        ("right", right_ids, right, right_size, x1),
    ):
        for node in ids:
            top, centre, h = positions[node][0], positions[node][2], max(sizes.get(node, 0) * scale, 1)
            colour = "#999" if node in (NEW, GONE) else segment_colour(node)
            parts.append(f'<rect x="{x}" y="{top:.1f}" width="{bar}" height="{h:.1f}" fill="{colour}"/>')
            tx, anchor = (x - 6, "end") if side == "left" else (x + bar + 6, "start")
            parts.append(
                f'<text x="{tx}" y="{centre + 4:.1f}" text-anchor="{anchor}">'
                f"{html.escape(name(node, side))} ({int(sizes.get(node, 0)):,})</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _matrix(view: BusinessView) -> str:
    """Counts from last month's segment (rows) to this month's (columns), shaded by the share of the row."""
    flows = view.movements["flows"]
    counts = {(f.source, f.target): int(f.shops) for f in flows.itertuples()}
    rows, columns = _sides(flows, [c.segment_id for c in view.cards])
    names_now = {c.segment_id: c.name for c in view.cards}

    def head(node, before):
        if node == NEW:
            return "not scored last month"
        if node == GONE:
            return "no longer scored"
        return html.escape((view.movements["names_before"] if before else names_now).get(node, str(node)))

    cells = [
        "<table class='matrix' id='transition-matrix'><tr><th>last month ↓ / this month →</th>",
        *(f"<th>{head(c, False)}</th>" for c in columns),
        "</tr>",
    ]
    for row in rows:
        row_total = max(sum(counts.get((row, column), 0) for column in columns), 1)
        cells.append(f"<tr><th>{head(row, True)}</th>")
        for column in columns:
            n = counts.get((row, column), 0)
            shade = f"background:rgba(31,119,180,{0.08 + 0.6 * n / row_total:.2f})" if n else ""
            cls = " class='same'" if row == column else ""
            cells.append(f"<td{cls} style='{shade}'>{n:,}</td>" if n else "<td></td>")
        cells.append("</tr>")
    cells.append("</table>")
    return "".join(cells)


def _model_change(moves: dict) -> str:
    before, now = moves["models"]
    if before is None or now is None or before == now:
        return ""
    return (
        f"<p class='note' id='model-change'>The model changed since last month (v{before} → v{now}): part of "
        "these movements comes from the new model's segments, not from changed behaviour.</p>"
    )


def render_business(view: BusinessView) -> str:
    """The business section's HTML: summary line, cards, movements (Sankey and matrix)."""
    noun = view.noun
    shops = sum(c.shops for c in view.cards)
    model_segments = sum(c.kind == "model" for c in view.cards)
    parts = [
        f"<style>{STYLE}</style>",
        "<section id='business'>",
        "<h2 id='segments-overview'>Segments this month</h2>",
        f"<p class='summary'><b>{shops:,} {noun}</b> in <b>{len(view.cards)} segments</b> "
        f"({model_segments} found by the model, {len(view.cards) - model_segments} by lifecycle rules"
        f"{' or atypical' if any(c.kind == 'noise' for c in view.cards) else ''}); "
        f"<b>{view.buyers:,}</b> of them {'bought' if view.customers else 'sold'} this month, "
        f"{view.measure} <b>{amount(view.total_measure)}</b>. Cards are ordered by size; profile values are the segment's medians over the feature window.</p>",
        "<div class='cards' id='segment-cards'>",
        *(_card_html(c, view) for c in view.cards),
        "</div>",
        "<h2 id='movements'>Movements since last month</h2>",
    ]
    moves = view.movements
    if moves is None:
        parts.append(f"<p>No segments for {add_months(view.month, -1)}: this is the first segmented month.</p>")
    else:
        common = moves["stayed"] + moves["moved"]
        parts += [
            "<ul class='moves-summary'>",
            f"<li><b>{moves['stayed']:,}</b> {noun} kept their segment "
            f"({percent(moves['stayed'] / common if common else math.nan)} of those scored both months)</li>",
            f"<li><b>{moves['moved']:,}</b> moved to another segment</li>",
            f"<li><b>{moves['new']:,}</b> new (not scored last month)</li>",
            f"<li><b>{moves['lapsed']:,}</b> lapsed (moved into a lapsed segment)</li>",
            f"<li><b>{moves['gone']:,}</b> no longer scored (no sale in the feature window)</li></ul>",
            _model_change(moves),
            "<div id='sankey'>",
            _sankey(view),
            "</div>",
            "<details open><summary>Transition matrix (counts)</summary>",
            _matrix(view),
            "</details>",
        ]
    parts.append("</section>")
    return "\n".join(parts)
