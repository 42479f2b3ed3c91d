"""The command line imports files of any size in bounded memory; the web upload keeps its limit (issue 8, item 4)."""

from __future__ import annotations

import io
import tracemalloc
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.models import Business, Sale, SaleLine
from core.settings import Settings
from ingest.importer import import_file, import_path
from manage import main
from tests.conftest import new_business
from tests.factories import TINY_DIR

HEADER = "order_id,order_date,customer_code,sku,quantity,unit_price,unit_cost,discount,status,sales_rep,storefront\n"
CUSTOMERS = ("A1", "B2", "C3", "D4")
PRICES = ("15", "14.5", "9.99", "120")
QUANTITIES = ("1", "2", "3", "0.5", "12")
DISCOUNTS = ("0", "0.1", "0.05")


def sales_line(i: int) -> tuple[str, str, str, str, str]:
    """Line i of a generated file: order (3 lines each, the third repeating the first SKU every
    seventh order), sku, quantity, unit price, discount."""
    order = i // 3
    sku = "P1" if i % 3 == 0 or (i % 3 == 2 and order % 7 == 0) else "P2"
    return f"G{order:07d}", sku, QUANTITIES[i % 5], PRICES[order % 4], DISCOUNTS[i % 3]


def write_sales(path: Path, lines: int, bad_rows: tuple[int, ...] = ()) -> None:
    """A sales file of `lines` data rows; a data row whose file row number is in `bad_rows` has
    quantity 'x'."""
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(HEADER)
        for i in range(lines):
            order_id, sku, quantity, price, discount = sales_line(i)
            if i + 2 in bad_rows:
                quantity = "x"
            day = 1 + (i // 3) % 28
            customer = CUSTOMERS[(i // 3) % 4]
            f.write(
                f"{order_id},2025-02-{day:02d},{customer},{sku},{quantity},{price},1,{discount},completed,ana,M\n"
            )


def expected_net_micros(lines: int) -> int:
    """The file's total line net, worked out with Decimal from the same generator."""
    total = Decimal(0)
    for i in range(lines):
        _, _, quantity, price, discount = sales_line(i)
        total += Decimal(quantity) * Decimal(price) * (1 - Decimal(discount))
    return int(total * 1_000_000)


@pytest.fixture
def shop(engine: Engine, business: Business, settings: Settings) -> Business:
    for entity in ("storefronts", "customers", "products"):
        data = (TINY_DIR / f"{entity}.csv").read_bytes()
        assert import_file(engine, business.id, entity, f"{entity}.csv", data, settings).ok
    return business


@pytest.fixture
def small_limit(cli_env: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The CLI's environment with a 1 MB upload limit (the real one is 50 MB)."""
    monkeypatch.setenv("TALLYBOARD_MAX_UPLOAD_MB", "1")
    settings = Settings.from_env()
    assert settings.max_upload_bytes == 1024 * 1024
    return settings


def stored(session: Session, business: Business) -> tuple[int, int, int]:
    """(lines, sum of line net, sum of order net) of the business."""
    session.expire_all()
    lines, line_net = session.execute(
        select(func.count(SaleLine.id), func.coalesce(func.sum(SaleLine.net_micros), 0)).where(
            SaleLine.business_id == business.id
        )
    ).one()
    order_net = session.scalar(
        select(func.coalesce(func.sum(Sale.net_micros), 0)).where(Sale.business_id == business.id)
    )
    return int(lines), int(line_net), int(order_net or 0)


def test_cli_imports_a_file_over_the_upload_limit_which_the_web_upload_refuses(
    engine: Engine,
    shop: Business,
    small_limit: Settings,
    session: Session,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "sales.csv"
    lines = 30_000
    write_sales(path, lines)
    assert path.stat().st_size > small_limit.max_upload_bytes

    assert main(["import", "sales", str(path), "--business", shop.code]) == 0
    out = capsys.readouterr()
    assert f"Imported {lines:,} sales lines ({lines:,} new)." in out.out, out.err
    total = expected_net_micros(lines)
    assert stored(session, shop) == (lines, total, total)

    assert main(["import", "sales", str(path), "--business", shop.code]) == 0
    assert (
        f"Nothing changed: all {lines:,} sales lines in the file were already up to date."
        in capsys.readouterr().out
    )

    # The web page's door (ui/data_view.py calls import_file with the uploaded bytes) keeps the limit.
    result = import_file(
        engine, shop.id, "sales", "sales.csv", path.read_bytes(), small_limit, username="ana"
    )
    assert not result.ok
    size_mb = path.stat().st_size / 1024 / 1024
    assert result.message == (
        f"Rejected: the file is {size_mb:.1f} MB, over the 1.0 MB upload limit "
        "(set TALLYBOARD_MAX_UPLOAD_MB to raise it); nothing was imported."
    )
    assert stored(session, shop) == (lines, total, total)


def test_cli_rejects_a_big_file_with_every_bad_row_listed_and_imports_nothing(
    engine: Engine,
    shop: Business,
    small_limit: Settings,
    session: Session,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "sales.csv"
    bad = (7, 15_001, 30_001)  # file rows (the header is row 1); the last is the file's last row
    write_sales(path, 30_000, bad_rows=bad)
    assert path.stat().st_size > small_limit.max_upload_bytes

    assert main(["import", "sales", str(path), "--business", shop.code]) == 1
    err = capsys.readouterr().err
    assert "Rejected: 3 rows have problems; nothing was imported." in err
    for row in bad:
        assert f"  row {row}, column quantity: 'x' is not a number" in err
    assert stored(session, shop) == (0, 0, 0)


@pytest.mark.slow
def test_memory_stays_bounded_whatever_the_file_size(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    """Python's peak allocation during an import does not grow with the file (SQLite's own page
    cache is outside tracemalloc; it is bounded by the import's cache_size)."""
    peaks: dict[int, int] = {}
    for lines in (300, 20_000, 80_000):  # the first one only warms up SQLAlchemy's statement caches
        shop = new_business(engine, "Memory")
        for entity in ("storefronts", "customers", "products"):
            data = (TINY_DIR / f"{entity}.csv").read_bytes()
            assert import_file(engine, shop.id, entity, f"{entity}.csv", data, settings).ok
        path = tmp_path / f"sales_{lines}.csv"
        write_sales(path, lines)
        tracemalloc.start()
        try:
            result = import_path(engine, shop.id, "sales", path, settings)
            peaks[lines] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert result.ok, result.errors
    # Four times the file (4.4 MB instead of 1.1 MB), the same few MB of batches and one read chunk.
    assert (tmp_path / "sales_80000.csv").stat().st_size > 4 * (
        tmp_path / "sales_20000.csv"
    ).stat().st_size * 0.95
    assert peaks[80_000] < 1.2 * peaks[20_000], peaks


def test_cli_door_reads_excel_files_in_read_only_mode(
    engine: Engine, shop: Business, settings: Settings, session: Session, tmp_path: Path
) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HEADER.strip().split(","))
    for i in range(6):
        order_id, sku, quantity, price, discount = sales_line(i)
        sheet.append(
            [
                order_id,
                "2025-02-01",
                "A1",
                sku,
                float(quantity),
                float(price),
                1,
                float(discount),
                "completed",
                "ana",
                "M",
            ]
        )
    buffer = io.BytesIO()
    workbook.save(buffer)
    path = tmp_path / "sales.xlsx"
    path.write_bytes(buffer.getvalue())

    result = import_path(engine, shop.id, "sales", path, settings)
    assert (result.ok, result.inserted) == (True, 6), result.errors
    total = expected_net_micros(6)
    assert stored(session, shop) == (6, total, total)
    assert import_path(engine, shop.id, "sales", path, settings).message.startswith("Nothing changed")
