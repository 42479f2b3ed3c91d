"""One table read back from a stored report file (api/tables.py) is exactly the table the writers wrote,
for every report in the registry, with data and without: the JSON records line by line, the CSV entry
of a ZIP by its name."""

from __future__ import annotations

import io
import zipfile

import orjson
import pytest
from sqlalchemy import Engine

from analytics.report import Report, ReportParams
from api.tables import csv_entry, json_array, json_records
from core.db import make_sessionmaker
from core.errors import NotFound
from core.settings import Settings
from exporters.csv_export import entry_name, is_bundle, write_csv
from exporters.json_export import report_document, write_json
from reports.registry import REPORTS, generate
from snapshots.store import SnapshotStore
from tests.tenants import NOW, Tenant, make_tenant

PERIODS = {"with data": "start=2024-12-01 end=2025-04-30", "empty": "start=2031-01-01 end=2031-01-31"}


@pytest.fixture(scope="module")
def shop(engine: Engine) -> Tenant:
    """One business for the module: every report reads the same snapshot."""
    return make_tenant(engine, "Tables Trading")


@pytest.fixture(scope="module")
def snapshots(engine: Engine, settings: Settings) -> SnapshotStore:
    return SnapshotStore(engine, settings.snapshot_dir)


def build(engine: Engine, store: SnapshotStore, tenant: Tenant, slug: str, period: str) -> Report:
    params = ReportParams.from_pairs([*period.split(), f"now={NOW.isoformat()}"])
    with make_sessionmaker(engine)() as session:
        return generate(session, store, tenant.scope("admin"), slug, params, now=NOW)


@pytest.mark.parametrize("period", list(PERIODS))
@pytest.mark.parametrize("slug", [r.slug for r in REPORTS])
def test_each_table_reads_back_as_written(
    engine: Engine, snapshots: SnapshotStore, shop: Tenant, slug: str, period: str
) -> None:
    report = build(engine, snapshots, shop, slug, PERIODS[period])
    document = io.BytesIO()
    write_json(report, document)
    expected = report_document(report)["tables"]
    for name in report.tables:
        document.seek(0)
        records = [orjson.loads(r) for r in json_records(document, slug, name)]
        assert records == expected[name], name
        document.seek(0)
        array = b"".join(json_array(json_records(document, slug, name), io.BytesIO()))
        assert orjson.loads(array) == expected[name]
    document.seek(0)
    with pytest.raises(NotFound, match=f"its tables are: {', '.join(report.tables)}."):
        json_records(document, slug, "no_such_table")

    bundle = io.BytesIO()
    write_csv(report, bundle)
    if not is_bundle(report):
        assert csv_entry(bundle, slug, next(iter(report.tables))) is None and bundle.tell() == 0
        return
    for table in report.tables.values():
        assert entry_name(report, table) == f"{slug}_{table.name}.csv"  # the name api/tables.py opens
        found = csv_entry(io.BytesIO(bundle.getvalue()), slug, table.name)
        assert found is not None
        chunks, size = found
        data = b"".join(chunks)
        assert len(data) == size
        with zipfile.ZipFile(io.BytesIO(bundle.getvalue())) as archive:
            assert data == archive.read(entry_name(report, table))
    with pytest.raises(NotFound, match="has no table 'nope'"):
        csv_entry(io.BytesIO(bundle.getvalue()), slug, "nope")
