"""Stage 7, recommend: for each shop, the top N products it has not bought yet, with a score and a reason.

Runs after publish. Reads the month's segments (scores/month=M) and the window's raw partitions (shop, product,
month) from the lake, does the work in DuckDB (integer keys, spilling to a scratch folder, shops in ranges so
memory stays bounded at a million shops) and replaces the month in the warehouse tables `recommendations`
and `recommendation_runs` in one transaction. A re-run whose inputs match the warehouse's record computes nothing;
one that makes the rows the warehouse holds writes nothing.

Methods (SEGMENTATION_RECOMMEND_METHOD; `scope` says whose purchases count: the shop's segment or all shops):

    itemcf            item-based collaborative filter over all shops (the default, chosen by measurement)
    segment_itemcf    the same, with co-purchases counted among the shop's segment only
    popular           the products most shops bought recently (the popularity baseline)
    segment_popular   the products most shops of the shop's segment bought recently (shrunk toward all shops')

Item-based: two products are similar when the same shops bought both (cosine over the shops' baskets, a basket being
a shop's 30 most recent products; each product keeps its 20 most similar); a candidate's affinity is the sum of its
similarities to the basket, a recent purchase weighing more (half-life 1 month), per unit of basket weight; its score
adds 0.05 x its popularity scaled to the best (which also fills a list that similarity leaves short).
`benchmarks/recommend_quality.py` measures all four on held-out months; on Online Retail and on planted shop data
the segment's purchases did not make better lists than all shops' (README, "Recommendations"), so the segment
shows in the reasons, not in the default ranking.

Every sum is of fixed-point integers and every ordering names all its keys (score, then the product's buyers,
then product id), so the same input gives the same rows on any number of threads or shop ranges.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from ..config import Settings
from ..features.engine import available_cores, is_customer_month, window_partitions
from ..lake.storage import Lake, month_ref, utc_now
from ..months import month_index
from .decide import read_decision

log = logging.getLogger(__name__)
FIXED = 1_000_000  # popularity weights in fixed point: their sums are exact, whatever the order
FINE = 10_000  # similarities and basket weights in fixed point: their products fit a 32-bit integer, sums exact
ALL_SHOPS = -1  # the group of all shops (and the only group of noise shops, which have no segment)
RANGE_SHOPS = 50_000  # shops scored per query: bounds the candidates held at once
ENGINE_MEMORY = "3GB"
METHODS = {
    "itemcf": ("itemcf", "all"),
    "segment_itemcf": ("itemcf", "segment"),  # config.RECOMMEND_METHODS
    "popular": ("popular", "all"),
    "segment_popular": ("popular", "segment"),
}
OUTPUT_COLUMNS = ["month", "shop_id", "rank", "product_id", "score", "reason", "segment_id"]


@dataclass(frozen=True)
class Recipe:
    """How recommendations are made."""

    method: str = "itemcf"  # itemcf | popular
    scope: str = "all"  # all | segment: whose purchases count
    top_n: int = 10
    half_life_months: float = 1.0  # a purchase k months before the month weighs 0.5 ** (k / half-life)
    recent_products: int = 30  # item-based: a shop's most recent products are its basket
    neighbours: int = 20  # item-based: the most similar products kept per product
    popularity_weight: float = 0.05  # item-based: weight of the scaled popularity next to the basket affinity
    prior_shops: float = 20.0  # segment popularity: a segment's shares are shrunk toward all shops' by this many shops

    @property
    def name(self) -> str:
        return next(name for name, spec in METHODS.items() if spec == (self.method, self.scope))

    def describe(self) -> str:
        """The method and its parameters, as recorded in recommendation_runs.method."""
        unit = "month" if self.half_life_months == 1 else "months"
        common = f"top {self.top_n}, half-life {self.half_life_months:g} {unit}"
        if self.method == "popular":
            prior = f", prior {self.prior_shops:g} shops" if self.scope == "segment" else ""
            return f"{self.name} ({common}{prior})"
        return (
            f"{self.name} ({common}, basket {self.recent_products} products, {self.neighbours} neighbours, "
            f"popularity weight {self.popularity_weight:g})"
        )


def recipe_for(settings: Settings) -> Recipe:
    method, scope = METHODS[settings.recommend_method]
    return Recipe(method=method, scope=scope, top_n=settings.recommend_top_n)


# --- the engine -------------------------------------------------------------------------------------------------


def _quote(text: str) -> str:
    return text.replace("'", "''")


def _parquet(paths: list[str], columns: str) -> str:
    files = ", ".join(f"'{_quote(p)}'" for p in paths)
    return f"SELECT {columns} FROM read_parquet([{files}], hive_partitioning = false)"


def engine(scratch: str):
    """An in-memory DuckDB that spills to `scratch` beyond ENGINE_MEMORY."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{ENGINE_MEMORY}'")
    con.execute(f"SET temp_directory = '{_quote(scratch)}'")
    con.execute(f"SET threads TO {available_cores()}")
    return con


def load_members(con, scores_path: str) -> None:
    """`members`: the month's scored shops with an integer key (in shop_id order) and their segment."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE members AS "
        "SELECT row_number() OVER (ORDER BY shop_id) AS sid, shop_id, segment_id, segment_name "
        f"FROM ({_parquet([scores_path], 'shop_id, segment_id, segment_name')})"
    )


def load_history(con, raw_paths: list[str], as_of_index: int, half_life: float) -> None:
    """`products` (integer keys) and `bought`: each scored shop's products in the window, with how many months
    ago it last bought each and that purchase's weight (fixed point)."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE pairs AS
        SELECT m.sid, r.product_id, ANY_VALUE(m.segment_id) AS segment_id,
               {as_of_index} - MAX(r.year * 12 + r.month - 1) AS age
        FROM ({_parquet(raw_paths, "shop_id, product_id, year, month, sales_qty")}) r JOIN members m USING (shop_id)
        WHERE r.sales_qty > 0 AND r.year * 12 + r.month - 1 <= {as_of_index}
        GROUP BY m.sid, r.product_id""")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE products AS SELECT product_id, row_number() OVER (ORDER BY product_id) "
        "AS pid FROM (SELECT DISTINCT product_id FROM pairs)"
    )
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE bought AS
        SELECT p.sid, k.pid, p.segment_id, p.age,
               CAST(round({FIXED} * pow(0.5, p.age / {float(half_life)})) AS BIGINT) AS w
        FROM pairs p JOIN products k USING (product_id)""")
    con.execute("DROP TABLE pairs")


def group_of(scope: str, alias: str = "m") -> str:
    """SQL: a shop's group (of `alias`, a members row): its segment (noise: all shops) or, with scope all, all shops."""
    if scope == "segment":
        return f"CASE WHEN {alias}.segment_id >= 0 THEN {alias}.segment_id ELSE {ALL_SHOPS} END"
    return str(ALL_SHOPS)


def popularity(con, prior: float) -> None:
    """`popular`: per group (each segment and ALL_SHOPS) and product: the shops that bought it, the group's size
    and the recency-weighted share of the group's shops that bought it (a segment's shrunk toward all shops'
    by `prior` shops), and its rank in the group."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE popular AS
        WITH sizes AS (SELECT segment_id AS gid, COUNT(*) AS shops FROM members WHERE segment_id >= 0 GROUP BY 1),
        overall AS (SELECT pid, SUM(w) AS w, COUNT(*) AS buyers, (SELECT COUNT(*) FROM members) AS shops
                    FROM bought GROUP BY pid),
        per_group AS (SELECT segment_id AS gid, pid, SUM(w) AS w, COUNT(*) AS buyers
                      FROM bought WHERE segment_id >= 0 GROUP BY 1, 2),
        shares AS (
            SELECT s.gid, o.pid, COALESCE(g.buyers, 0) AS buyers, s.shops, o.buyers AS buyers_all,
                   (COALESCE(g.w, 0) + {float(prior)} * o.w / o.shops) / ({FIXED} * (s.shops + {float(prior)})) AS share
            FROM sizes s CROSS JOIN overall o LEFT JOIN per_group g ON g.gid = s.gid AND g.pid = o.pid
            UNION ALL
            SELECT {ALL_SHOPS}, pid, buyers, shops, buyers, w / ({FIXED} * shops) FROM overall)
        SELECT *, row_number() OVER (PARTITION BY gid ORDER BY share DESC, buyers_all DESC, pid) AS place,
               MAX(share) OVER (PARTITION BY gid) AS best_share
        FROM shares""")


def item_neighbours(con, scope: str, recent_products: int, neighbours: int, half_life: float) -> None:
    """`basket` (each shop's most recent products, weighted by recency relative to its latest purchase: only the
    ratios count) and `neighbours`: per group and product, the products most often bought by the same shops of
    the group (cosine of their buyer sets, fixed point)."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE basket AS
        SELECT sid, pid, gid,
               CAST(round({FINE} * pow(0.5, (age - MIN(age) OVER (PARTITION BY sid)) / {float(half_life)})) AS INTEGER)
                   AS w
        FROM (SELECT sid, pid, age, {group_of(scope, "bought")} AS gid,
                     row_number() OVER (PARTITION BY sid ORDER BY age, pid) AS place FROM bought)
        WHERE place <= {int(recent_products)}""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE neighbours AS
        WITH buyers AS (SELECT gid, pid, COUNT(*) AS n FROM basket GROUP BY gid, pid),
        co AS (SELECT a.gid, a.pid AS a, b.pid AS b, COUNT(*) AS co
               FROM basket a JOIN basket b ON a.sid = b.sid AND a.pid <> b.pid
               GROUP BY a.gid, a.pid, b.pid),
        sim AS (SELECT co.gid, co.a, co.b, co.co / sqrt(na.n * nb.n) AS sim
                FROM co JOIN buyers na ON na.gid = co.gid AND na.pid = co.a
                        JOIN buyers nb ON nb.gid = co.gid AND nb.pid = co.b)
        SELECT gid, a, b, CAST(round({FINE} * sim) AS INTEGER) AS sim
        FROM (SELECT *, row_number() OVER (PARTITION BY gid, a ORDER BY sim DESC, b) AS place FROM sim)
        WHERE place <= {int(neighbours)}""")


def _range(low: int, high: int, alias: str) -> str:
    return f"{alias}.sid >= {low} AND {alias}.sid < {high}"


def candidate_parts(recipe: Recipe, low: int, high: int) -> str:
    """SQL: for the shops in [low, high), (sid, pid, part) rows whose sum per product is its affinity: each basket
    product's similarity to it times the product's basket weight (item-based), and a zero for each of the group's
    most popular products (enough of them that N remain after removing what the shop owns)."""
    popular = f"""
        SELECT s.sid, p.pid, 0 AS part
        FROM shops s JOIN popular p ON p.gid = s.gid AND p.place <= {recipe.top_n} + s.owned
        WHERE {_range(low, high, "s")}"""
    if recipe.method == "popular":
        return popular
    return f"""
        SELECT h.sid, s.b AS pid, s.sim * h.w AS part
        FROM basket h JOIN neighbours s ON s.gid = h.gid AND s.a = h.pid
        WHERE {_range(low, high, "h")}
        UNION ALL {popular}"""


def candidates_sql(recipe: Recipe, low: int, high: int) -> str:
    """SQL: the candidates of the shops in [low, high) they have not bought, with their affinity (an exact integer
    sum) and score. Popular: the product's recency-weighted share of the group. Item-based: the affinity per unit of
    the basket's weight (0..1) plus popularity_weight x the share scaled to the group's best."""
    if recipe.method == "popular":
        score = "p.share"
    else:
        score = f"c.affinity / (s.basket_weight * {FINE}) + {float(recipe.popularity_weight)} * p.share / p.best_share"
    return f"""
        WITH affinities AS (
            SELECT sid, pid, SUM(part) AS affinity FROM ({candidate_parts(recipe, low, high)}) GROUP BY sid, pid)
        SELECT c.sid, c.pid, {score} AS score, p.buyers_all, c.affinity
        FROM affinities c JOIN shops s USING (sid) JOIN popular p ON p.gid = s.gid AND p.pid = c.pid
        ANTI JOIN (SELECT sid, pid FROM bought b WHERE {_range(low, high, "b")}) o ON o.sid = c.sid AND o.pid = c.pid"""


def because_sql(recipe: Recipe) -> str:
    """SQL: per recommendation in `ranked` with an affinity, the (at most two) basket products that point to it
    most, as product keys `since_1`, `since_2`."""
    if recipe.method == "popular":
        return "SELECT NULL::BIGINT AS sid, NULL::BIGINT AS pid, NULL::BIGINT AS since_1, NULL::BIGINT AS since_2"
    return """
        SELECT sid, pid, top[1] AS since_1, top[2] AS since_2 FROM (
            SELECT r.sid, r.pid, max_by(h.pid, [s.sim * h.w, -h.pid], 2) AS top
            FROM ranked r JOIN basket h ON h.sid = r.sid
            JOIN neighbours s ON s.gid = h.gid AND s.a = h.pid AND s.b = r.pid
            WHERE r.affinity > 0
            GROUP BY r.sid, r.pid)"""


def rank_range(con, recipe: Recipe, low: int, high: int) -> None:
    """Append the top N of the shops in [low, high) to `recommended` (sid, pid, rank, score, affinity and the
    basket products behind it)."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE ranked AS
        SELECT sid, pid, row_number() OVER (PARTITION BY sid ORDER BY score DESC, buyers_all DESC, pid) AS rank,
               score, affinity
        FROM ({candidates_sql(recipe, low, high)})
        QUALIFY rank <= {recipe.top_n}""")
    con.execute(f"""
        INSERT INTO recommended
        SELECT r.sid, r.pid, r.rank, r.score, r.affinity, b.since_1, b.since_2
        FROM ranked r LEFT JOIN ({because_sql(recipe)}) b ON b.sid = r.sid AND b.pid = r.pid""")
    con.execute("DROP TABLE ranked")


def rank_all(con, recipe: Recipe) -> None:
    """`shops` (each member's group, how many products it owns, its basket's weight) and `recommended`: every
    member's top N, computed RANGE_SHOPS shops at a time."""
    weights = (
        "SELECT sid, SUM(w) AS basket_weight FROM basket GROUP BY sid"
        if recipe.method == "itemcf"
        else "SELECT NULL::BIGINT AS sid, NULL::BIGINT AS basket_weight LIMIT 0"
    )
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE shops AS
        SELECT m.sid, {group_of(recipe.scope)} AS gid, COALESCE(o.owned, 0) AS owned,
               GREATEST(COALESCE(k.basket_weight, 0), 1) AS basket_weight
        FROM members m
        LEFT JOIN (SELECT sid, COUNT(*) AS owned FROM bought GROUP BY sid) o USING (sid)
        LEFT JOIN ({weights}) k USING (sid)""")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE recommended (sid BIGINT, pid BIGINT, rank BIGINT, score DOUBLE, "
        "affinity HUGEINT, since_1 BIGINT, since_2 BIGINT)"
    )
    shops = con.execute("SELECT COUNT(*) FROM members").fetchone()[0]
    for low in range(1, shops + 1, RANGE_SHOPS):
        rank_range(con, recipe, low, low + RANGE_SHOPS)


# --- reasons and output -----------------------------------------------------------------------------------------


def _bought_by(prefix: str, noun: str) -> str:
    """SQL: "412 of the 1,930 customers in 'Champions'" (a segment) or "812 of all 4,334 customers" (all shops),
    from the columns <prefix>_gid, <prefix>_buyers and <prefix>_shops."""
    gid, buyers, shops = (f"{prefix}_{column}" for column in ("gid", "buyers", "shops"))
    count = f"CASE WHEN {buyers} = 0 THEN 'none' ELSE format('{{:,d}}', {buyers}) END"
    return (
        f"CASE WHEN {gid} = {ALL_SHOPS} THEN format('{{}} of all {{:,d}} {noun}', {count}, {shops}) "
        f"ELSE format('{{}} of the {{:,d}} {noun} in ''{{}}''', {count}, {shops}, segment_name) END"
    )


def _percent(prefix: str) -> str:
    buyers, shops = f"{prefix}_buyers", f"{prefix}_shops"
    return (
        f"CASE WHEN {buyers} * 100 < {shops} THEN '<1' "
        f"ELSE CAST(CAST(round(100.0 * {buyers} / {shops}) AS BIGINT) AS VARCHAR) END"
    )


def reason_sql(noun: str) -> str:
    """SQL: why, in words. Item-based: the basket products it is most bought with, and how many of the shop's
    segment bought it. Popular (and the popularity part of item-based lists): how many of the group it was ranked
    in bought it (all shops' figures when none of the segment did)."""
    return f"""
        CASE WHEN since IS NULL
             THEN format('Bought by {{}} ({{}}%), not yet by this one', {_bought_by("ranked", noun)},
                         {_percent("ranked")})
             ELSE format('Often bought with {{}}, which this one bought; {{}} bought it', since,
                         {_bought_by("segment", noun)}) END"""


def output_sql(recipe: Recipe, month: str, noun: str) -> str:
    """SQL: the output rows in OUTPUT_COLUMNS order (in no particular row order: the warehouse keys them)."""
    return f"""
        WITH described AS (
            SELECT m.shop_id, r.rank, k.product_id, r.score, m.segment_id, m.segment_name,
                   CASE WHEN k2.product_id IS NULL THEN k1.product_id
                        ELSE k1.product_id || ' and ' || k2.product_id END AS since,
                   g.gid AS segment_gid, g.buyers AS segment_buyers, g.shops AS segment_shops,
                   CASE WHEN q.buyers > 0 THEN q.gid ELSE a.gid END AS ranked_gid,
                   CASE WHEN q.buyers > 0 THEN q.buyers ELSE a.buyers END AS ranked_buyers,
                   CASE WHEN q.buyers > 0 THEN q.shops ELSE a.shops END AS ranked_shops
            FROM recommended r JOIN members m USING (sid) JOIN products k USING (pid)
            LEFT JOIN products k1 ON k1.pid = r.since_1 LEFT JOIN products k2 ON k2.pid = r.since_2
            JOIN popular g ON g.gid = {group_of("segment")} AND g.pid = r.pid
            JOIN popular q ON q.gid = {group_of(recipe.scope)} AND q.pid = r.pid
            JOIN popular a ON a.gid = {ALL_SHOPS} AND a.pid = r.pid)
        SELECT '{_quote(month)}' AS month, shop_id, rank, product_id, score, {reason_sql(noun)} AS reason, segment_id
        FROM described"""


def write_output(con, recipe: Recipe, month: str, noun: str, out: Path) -> None:
    """The output rows as a parquet file, streamed (rows in any order: memory stays bounded)."""
    con.execute("SET preserve_insertion_order = false")
    con.execute(
        f"COPY ({output_sql(recipe, month, noun)}) TO '{_quote(str(out))}' "
        "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 65536)"
    )


def empty_output(con, out: Path) -> None:
    """A parquet file with the output's columns and no rows (a month without segments)."""
    con.execute(
        f"COPY (SELECT ''::VARCHAR AS month, ''::VARCHAR AS shop_id, 0::BIGINT AS rank, ''::VARCHAR AS "
        f"product_id, 0::DOUBLE AS score, ''::VARCHAR AS reason, 0::BIGINT AS segment_id LIMIT 0) "
        f"TO '{_quote(str(out))}' (FORMAT parquet)"
    )


def summarise(con, out: Path) -> dict:
    """Rows, shops and products of an output file and a fingerprint of its content (the order-independent sum of
    each row's hash: the same rows give the same fingerprint with the same DuckDB version)."""
    rows, shops, products, total = con.execute(f"""
        SELECT COUNT(*), COUNT(DISTINCT shop_id), COUNT(DISTINCT product_id),
               COALESCE(SUM(hash(month, shop_id, rank, product_id, score, reason, segment_id)::HUGEINT), 0)
        FROM read_parquet('{_quote(str(out))}')""").fetchone()
    digest = hashlib.sha256(f"{rows}:{total}".encode()).hexdigest()
    return {"rows": int(rows), "shops": int(shops), "products": int(products), "content_sha": digest}


def recommend_files(
    raw_paths: list[str],
    scores_path: str | None,
    month: str,
    recipe: Recipe,
    out: Path,
    noun: str = "shops",
    scratch: str | None = None,
) -> dict:
    """Recommendations for the month from raw partitions (the window up to the month) and the month's scores,
    written to `out` (parquet, OUTPUT_COLUMNS, rows in no particular order); returns their summary."""
    with tempfile.TemporaryDirectory(prefix="recommend-", dir=scratch) as spill, engine(spill) as con:
        if scores_path is None or not raw_paths:
            empty_output(con, out)
            return summarise(con, out)
        steps = [
            ("members", lambda: load_members(con, scores_path)),
            ("history", lambda: load_history(con, raw_paths, month_index(month), recipe.half_life_months)),
            ("popularity", lambda: popularity(con, recipe.prior_shops)),
        ]
        if recipe.method == "itemcf":
            steps.append(
                (
                    "neighbours",
                    lambda: item_neighbours(
                        con, recipe.scope, recipe.recent_products, recipe.neighbours, recipe.half_life_months
                    ),
                )
            )
        steps += [
            ("rank", lambda: rank_all(con, recipe)),
            ("write", lambda: write_output(con, recipe, month, noun, out)),
        ]
        timings = {}
        for name, step in steps:
            started = time.perf_counter()
            step()
            timings[name] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        summary = summarise(con, out)
        timings["summarise"] = round(time.perf_counter() - started, 2)
        log.info("recommend %s: seconds per step %s", month, timings)
        return {**summary, "step_seconds": timings}


# --- the stage --------------------------------------------------------------------------------------------------

RUN_KEYS = ("content_sha", "inputs_sha", "method", "model_version", "history_months")  # what a re-run compares


def inputs_fingerprint(lake: Lake, month: str, months: list[str], recipe: Recipe, noun: str) -> str:
    """A hash of everything the month's recommendations are made from: the raw and scores files (their manifest
    checksums), the method and this module's code. The same fingerprint makes the same rows."""

    def data_sha(zone: str, key: str) -> str | None:
        manifest = lake.manifest(month_ref(zone, key))
        return next((f["sha256"] for f in manifest["files"] if f["name"] == "data.parquet"), None) if manifest else None

    parts = {
        "month": month,
        "raw": {m: data_sha("raw", m) for m in months},
        "scores": data_sha("scores", month),
        "method": recipe.describe(),
        "noun": noun,
        "code": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _run_row(
    month: str,
    run_id: str | None,
    recipe: Recipe,
    history_months: int,
    model_version: str | None,
    summary: dict,
    inputs_sha: str,
) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "month": month,
                "run_id": run_id,
                "method": recipe.describe(),
                "top_n": recipe.top_n,
                "history_months": history_months,
                "model_version": model_version,
                "shops": summary["shops"],
                "recommendations": summary["rows"],
                "products": summary["products"],
                "content_sha": summary["content_sha"],
                "inputs_sha": inputs_sha,
                "published_at": pd.Timestamp(utc_now()).tz_localize(None),
            }
        ]
    )


def _same(a, b) -> bool:
    return (pd.isna(a) and pd.isna(b)) if pd.isna(a) or pd.isna(b) else str(a) == str(b)


def _already_written(current: dict | None, run: pd.DataFrame) -> bool:
    """The warehouse's row for the month records the same content, made the same way from the same inputs."""
    mine = run.iloc[0]
    return bool(current) and all(_same(current.get(key), mine[key]) for key in RUN_KEYS)


def _outcome(month: str, recipe: Recipe, version: str | None, summary: dict) -> dict:
    """What the stage returns (and the DAG's asset event carries)."""
    return {
        "month": month,
        "method": recipe.name,
        "model_version": version,
        **summary,
        "tables": {"recommendations": {"rows": summary["rows"], "content_sha": summary["content_sha"]}},
    }


def recommend(settings: Settings, month: str, run_id: str | None = None, recipe: Recipe | None = None) -> dict:
    """Replace the month's recommendations in the warehouse, made from scores/month=M and the window's raw rows.

    Nothing is computed when the warehouse records this month as made from the same inputs, and nothing is
    written when the rows made are the ones it holds."""
    from ..warehouse.base import warehouse_for

    started = time.perf_counter()
    lake = Lake(settings.lake_root)
    recipe = recipe or recipe_for(settings)
    read_decision(settings, month)  # the month went through decide (and publish, which runs before this stage)
    scores = lake.manifest(month_ref("scores", month))
    version = scores["metadata"].get("model_version") if scores else None
    months = window_partitions(lake, month, settings.window_months) if scores else []
    noun = "customers" if is_customer_month(lake, month) else "shops"
    inputs_sha = inputs_fingerprint(lake, month, months, recipe, noun)
    warehouse = warehouse_for(settings)
    current = warehouse.current_recommendation_run(month)
    if current and current.get("inputs_sha") == inputs_sha:
        summary = {
            "rows": int(current["recommendations"]),
            "shops": int(current["shops"]),
            "products": int(current["products"]),
            "content_sha": current["content_sha"],
        }
        log.info(
            "recommend %s: the warehouse holds the %d recommendations made from these inputs; nothing to do",
            month,
            summary["rows"],
        )
        return {**_outcome(month, recipe, version, summary), "written": False}
    with tempfile.TemporaryDirectory(prefix="recommend-") as scratch:
        raw_paths = [lake.local_file(month_ref("raw", m), "data.parquet", scratch) for m in months]
        scores_path = lake.local_file(month_ref("scores", month), "data.parquet", scratch) if scores else None
        out = Path(scratch) / "recommendations.parquet"
        summary = recommend_files(raw_paths, scores_path, month, recipe, out, noun, scratch)
        run = _run_row(month, run_id, recipe, len(months), version, summary, inputs_sha)
        if _already_written(current, run):
            log.info(
                "recommend %s: the warehouse already holds these %d recommendations; nothing written",
                month,
                summary["rows"],
            )
            return {**_outcome(month, recipe, version, summary), "written": False}
        warehouse.replace_recommendations(month, out, run)
    seconds = round(time.perf_counter() - started, 3)
    log.info(
        "recommend %s: %d recommendations for %d %s (%d products) by %s from %d raw months (%.2fs)",
        month,
        summary["rows"],
        summary["shops"],
        noun,
        summary["products"],
        recipe.describe(),
        len(months),
        seconds,
    )
    return {**_outcome(month, recipe, version, summary), "written": True, "seconds": seconds}


def with_recipe(recipe: Recipe, **changes) -> Recipe:
    return replace(recipe, **changes)
