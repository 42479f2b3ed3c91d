"""FileStore: atomic writes, the size limit, safe paths, and files served only by id after the scope check."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest

from reports.registry import NotFound
from runs.files import FileGone, FileStore, FileTooLarge, format_bytes, too_large_message
from tests.tenants import Jobs, Tenant

MB = 1024 * 1024


def writing(data: bytes) -> Callable[[IO[bytes]], None]:
    """A FileStore.write callback that writes `data`."""

    def write(out: IO[bytes]) -> None:
        out.write(data)

    return write


def _leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_a_write_lands_whole_under_business_and_run(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    stored = store.write(3, 41, "report.csv", writing(b"a,b\n1,2\n"), max_bytes=MB)
    assert stored.path == "b3/41/report.csv" and stored.bytes == 8
    assert stored.sha256 == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert (tmp_path / "b3" / "41" / "report.csv").read_bytes() == b"a,b\n1,2\n"
    assert _leftovers(tmp_path) == ["b3/41/report.csv"]


def test_a_failing_writer_leaves_no_file_partial_or_temporary(tmp_path: Path) -> None:
    store = FileStore(tmp_path)

    def half_then_fail(out: IO[bytes]) -> None:
        out.write(b"x" * 100_000)
        raise RuntimeError("exporter broke")

    with pytest.raises(RuntimeError, match="exporter broke"):
        store.write(1, 7, "big.xlsx", half_then_fail, max_bytes=MB)
    assert _leftovers(tmp_path) == []
    assert not (tmp_path / "b1" / "7").exists()


def test_a_file_over_the_limit_is_refused_and_removed(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    with pytest.raises(FileTooLarge) as refused:
        store.write(1, 8, "r.json", writing(b"y" * 3000), max_bytes=2048, label="JSON")
    assert str(refused.value) == (
        "The JSON file would be 2.9 KB; the limit is 2.0 KB. Narrow the period or filters."
    )
    assert _leftovers(tmp_path) == []


def test_a_runaway_file_is_abandoned_while_it_is_written(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    written = 0

    def endless(out: IO[bytes]) -> None:
        nonlocal written
        for _ in range(1000):
            out.write(b"z" * 1024)
            written += 1024

    with pytest.raises(FileTooLarge, match=r"^The Excel file would be over 8\.0 KB; the limit is 2\.0 KB\."):
        store.write(1, 9, "r.xlsx", endless, max_bytes=2048, label="Excel")
    assert written < 20 * 1024  # stopped long before the writer was done
    assert _leftovers(tmp_path) == []


def test_writers_that_seek_work_through_the_limit(tmp_path: Path) -> None:
    """Excel writers build a ZIP, seeking back to fill in headers."""
    store = FileStore(tmp_path)

    def zipped(out: IO[bytes]) -> None:
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("a.txt", "hello " * 1000)
            zf.writestr("b.txt", "world")

    stored = store.write(2, 5, "r.zip", zipped, max_bytes=MB)
    with zipfile.ZipFile(tmp_path / stored.path) as zf:
        assert zf.read("b.txt") == b"world" and zf.read("a.txt").startswith(b"hello")


def test_the_size_message_reads_like_the_spec() -> None:
    assert too_large_message("Excel", 140 * MB, 100 * MB) == (
        "The Excel file would be 140 MB; the limit is 100 MB. Narrow the period or filters."
    )
    # Just over the limit must not read "100 MB; the limit is 100 MB".
    assert too_large_message("CSV", 100 * MB + 300_000, 100 * MB).startswith(
        "The CSV file would be 100.3 MB;"
    )


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (1023, "1,023 bytes"),
        (1536, "1.5 KB"),
        (50 * 1024, "50 KB"),
        (140 * MB, "140 MB"),
    ],
)
def test_sizes_for_people(size: int, shown: str) -> None:
    assert format_bytes(size) == shown


def test_paths_never_leave_the_reports_folder(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "reports")
    assert store.relative_path(1, 2, "../../etc/passwd") == "b1/2/passwd"
    for bad in ("..", ".hidden", ""):
        with pytest.raises(ValueError):
            store.relative_path(1, 2, bad)
    for escape in ("../outside.txt", "b1/../../x", "/etc/passwd"):
        with pytest.raises(ValueError):
            store.absolute(escape)
    assert not store.exists("../outside.txt")
    assert store.remove("../outside.txt") is False


def test_removing_a_file_prunes_its_run_folder_only(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    a = store.write(1, 3, "a.csv", writing(b"a"), max_bytes=MB)
    b = store.write(1, 3, "b.csv", writing(b"b"), max_bytes=MB)
    assert store.remove(a.path) and (tmp_path / "b1" / "3").is_dir()
    assert store.remove(b.path) and not (tmp_path / "b1" / "3").exists()
    assert (tmp_path / "b1").is_dir()
    assert store.remove(b.path) is False


def test_files_are_read_only_by_id_within_scope(jobs: Jobs, tenant: Tenant, other: Tenant) -> None:
    mine = jobs.generate(tenant, "staff")
    theirs = jobs.generate(other, "admin")
    [file_id] = [f.id for f in mine.files]
    with jobs.session() as s:
        for who in ("admin", "manager", "staff"):
            info, data = jobs.files.read(s, tenant.scope(who), file_id)
            assert info.file_name.endswith(".json") and len(data) == info.bytes == mine.bytes
        info, handle = jobs.files.open(s, tenant.scope("staff"), file_id)
        with handle:
            assert handle.read(1) == b"{"

        missing = max(f.id for f in theirs.files) + 1000
        messages = set()
        for scope, fid in (
            (tenant.scope("staff2"), file_id),  # another staff user's run
            (other.scope("admin"), file_id),  # another business
            (tenant.scope("admin"), theirs.files[0].id),  # another business's file
            (tenant.scope("admin"), missing),  # no such file
        ):
            with pytest.raises(NotFound) as refused:
                jobs.files.read(s, scope, fid)
            assert not isinstance(refused.value, FileGone)
            messages.add(str(refused.value))
        assert messages == {"No such file."}


def test_a_visible_file_gone_from_disk_says_so(jobs: Jobs, tenant: Tenant) -> None:
    out = jobs.generate(tenant)
    with jobs.session() as s:
        _, path = jobs.files.find(s, tenant.scope("admin"), out.files[0].id)
        path.unlink()
        with pytest.raises(FileGone, match=r"no longer stored.*Re-run the report"):
            jobs.files.read(s, tenant.scope("admin"), out.files[0].id)


def test_two_databases_sharing_a_reports_folder_never_overwrite_each_others_runs(tmp_path: Path) -> None:
    # Run ids start at 1 in every database: without the database's identity in the path, run 1 of
    # database B replaced the file of run 1 of database A (and A's History served B's numbers).
    from core.db import make_engine, migrate

    stores = []
    for name in ("a", "b"):
        engine = make_engine(f"sqlite:///{tmp_path / f'{name}.db'}")
        migrate(engine)
        stores.append(FileStore(tmp_path / "reports", engine))
    written = [
        store.write(1, 1, "report.json", writing(f"numbers of {n}".encode()), max_bytes=1000)
        for n, store in zip("ab", stores, strict=True)
    ]
    assert written[0].path != written[1].path
    for n, store, stored in zip("ab", stores, written, strict=True):
        assert store.absolute(stored.path).read_bytes() == f"numbers of {n}".encode()
