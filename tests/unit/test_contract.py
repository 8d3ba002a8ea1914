"""The contracts are written once (segmentation.contract) and everything that types or lists them follows it."""

import pyarrow as pa
from support.samples import write_uci_sample

from segmentation.contract import INVOICE_LINE_TYPES, MONTHLY_TYPES, SOURCE_KINDS
from segmentation.sources.invoices import UCI_LAYOUT, clean_invoices, invoice_lines, read_invoices
from segmentation.stages.validate import CONTRACT_SCHEMA


def test_the_raw_schema_is_the_monthly_contract():
    assert [(f.name, str(f.type)) for f in CONTRACT_SCHEMA] == [
        (name, str(pa.type_for_alias(kind))) for name, kind in MONTHLY_TYPES.items()
    ]


def test_invoice_lines_follow_the_invoice_lines_contract(tmp_path):
    write_uci_sample(tmp_path / "retail.csv", n_customers=5, months=2, seed=1)
    clean, _ = clean_invoices(read_invoices(tmp_path / "retail.csv", UCI_LAYOUT), UCI_LAYOUT)
    schema = pa.Schema.from_pandas(invoice_lines(clean), preserve_index=False)
    assert schema.names == list(INVOICE_LINE_TYPES)
    for name, kind in INVOICE_LINE_TYPES.items():  # pandas' strings arrive as large_string
        expected = pa.large_string() if kind == "string" else pa.type_for_alias(kind)
        assert schema.field(name).type == expected, name


def test_the_dag_offers_every_source_kind(fresh_dags):
    params = fresh_dags["segmentation_monthly"].params
    assert params.get_param("source").schema["enum"] == list(SOURCE_KINDS)
