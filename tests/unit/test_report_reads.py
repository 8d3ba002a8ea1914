"""What the report's reads rest on: a projected read of a lake table still verifies the whole file's checksum, and
id lookups take the identity when both sides hold the same ids in order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from segmentation.lake.storage import ChecksumMismatch, Lake, as_of_ref
from segmentation.serving.business import _as_text, rows_in


@pytest.fixture
def stored(tmp_path):
    """A two-column table in a lake, and the path of its parquet file."""
    lake = Lake(str(tmp_path / "lake"))
    ref = as_of_ref("features", "2024-01")
    table = pa.table({"shop_id": [f"S{i:05d}" for i in range(5_000)], "x": np.arange(5_000, dtype="float64")})
    lake.write_table(ref, table)
    path = next(p for p in (tmp_path / "lake" / "features").rglob("data.parquet"))
    return lake, ref, table, path


def _flip_a_byte_of(path, column: str) -> None:
    """Change one byte inside a column's data pages: the file still decodes, to different values."""
    chunk = pq.ParquetFile(path).metadata.row_group(0).column(1 if column == "x" else 0)
    data = bytearray(path.read_bytes())
    data[chunk.data_page_offset + chunk.total_compressed_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_projected_read_gives_the_columns_asked_for(stored):
    lake, ref, table, _ = stored
    assert lake.read_table(ref, columns=["x", "missing", "shop_id"]).equals(table.select(["x", "shop_id"]))


@pytest.mark.parametrize("column", ["x", "shop_id"])
def test_a_projected_read_verifies_the_whole_file(stored, column):
    lake, ref, _, path = stored
    _flip_a_byte_of(path, column)
    for columns in (["shop_id"], ["x"], ["shop_id", "x"]):  # bytes outside the columns read count too
        with pytest.raises(ChecksumMismatch, match="checksum"):
            lake.read_table(ref, columns=columns)
    with pytest.raises(ChecksumMismatch):
        lake.read_table(ref)


def test_a_file_that_no_longer_decodes_reports_the_checksum(stored):
    lake, ref, _, path = stored
    path.write_bytes(path.read_bytes()[:-100])  # the footer is gone
    with pytest.raises(ChecksumMismatch):
        lake.read_table(ref, columns=["x"])


def test_ids_in_the_same_order_take_the_identity_and_agree_with_the_hash_lookup():
    ids = pd.Series([f"S{i:04d}" for i in range(1_000)])
    identity = rows_in(ids, ids)
    hashed = pc.index_in(_as_text(ids), value_set=_as_text(ids)).to_numpy()
    assert identity.tolist() == list(range(1_000)) and (identity == hashed).all()
    shuffled = ids.sample(frac=1.0, random_state=0)
    assert (ids.to_numpy()[rows_in(shuffled, ids)] == shuffled.to_numpy()).all()
    assert rows_in(pd.Series(["S0002", "X", "S0000"]), ids).tolist() == [2, -1, 0]
    assert rows_in(ids[:3], pa.chunked_array([ids[:2].tolist(), ["S0002"]])).tolist() == [0, 1, 2]
    assert rows_in(pd.Series(["S0000", None]), pd.Series(["S0000", None])).tolist()[0] == 0  # nulls: hash lookup
