"""The HTTP API against a real server (`streamlit run app.py` on a free port): every endpoint for every
role, two businesses that never see each other's ids, tokens that stop working, the JSON equal to the
command line's byte for byte, the files opened and checked, 400/404/429 answers and the audit log."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from pathlib import Path

import openpyxl
import pytest
import requests
from sqlalchemy import select, update

from accounts.tokens import create_token
from accounts.users import operator
from analytics.report import Scope
from core.db import session_scope
from core.models import ApiToken, AuditEvent, Run, User
from manage import main
from reports.registry import REPORTS
from runs.access import allowed_reports
from tests.api.conftest import MAIN, NOW, OTHER, Api, server_log
from ui.browser_history import SCRIPT

ENDPOINTS = [
    "/reports",
    "/reports/kpi_dashboard",
    "/reports/kpi_dashboard/tables/top_customers",
    "/runs",
    "/runs/1",
    "/runs/1/files/x.json",
]


def error(response: requests.Response) -> dict[str, str]:
    body = response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])
    return dict(body["error"])


def on_server_database(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point manage.py (run in this process) at the server's database and data folder."""
    for name in ("DATABASE_URL", "TALLYBOARD_DATA_DIR"):
        monkeypatch.setenv(name, api.env[name])


def cli_report(
    api: Api, tmp_path: Path, slug: str, pairs: list[str], monkeypatch: pytest.MonkeyPatch
) -> bytes:
    """`manage.py report SLUG --business main --param ... --format json --out FILE`, on the server's database."""
    on_server_database(api, monkeypatch)
    out = tmp_path / f"{slug}.json"
    params = [arg for pair in pairs for arg in ("--param", pair)]
    assert main(["report", slug, "--business", MAIN, *params, "--format", "json", "--out", str(out)]) == 0
    return out.read_bytes()


def cli_error(
    api: Api,
    tmp_path: Path,
    slug: str,
    pair: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> str:
    on_server_database(api, monkeypatch)
    capsys.readouterr()
    assert main(["report", slug, "--business", MAIN, "--param", pair, "--out", str(tmp_path / "x.json")]) == 1
    return capsys.readouterr().err.removeprefix("error: ").strip()


# --- tokens -----------------------------------------------------------------------------------------


def test_the_openapi_document_needs_no_token(api: Api) -> None:
    response = api.get("/openapi.json", who=None)
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"] == "3.1.0"
    assert {p.removeprefix("/api/v1") for p in doc["paths"]} == {
        "/reports",
        "/reports/{slug}",
        "/reports/{slug}/tables/{table}",
        "/runs",
        "/runs/{run_id}",
        "/runs/{run_id}/files/{name}",
        "/openapi.json",
    }
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    query = {p["name"]: p for p in doc["paths"]["/api/v1/reports/{slug}"]["get"]["parameters"]}
    assert query["compare"]["schema"]["enum"] == ["previous", "last_year", "custom"]
    assert "kpi_dashboard" in query["compare"]["description"]
    assert query["compare_start"]["schema"] == {"type": "string", "format": "date"}


@pytest.mark.parametrize("path", ENDPOINTS)
def test_every_endpoint_wants_a_valid_token(api: Api, path: str) -> None:
    missing = api.get(path, who=None)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Authorization: Bearer TOKEN" in error(missing)["message"]
    for wrong in ("tb_" + "A" * 43, api.tokens["admin"] + "x", "Basic abc"):
        refused = api.get(path, token=wrong)
        assert refused.status_code == 401, wrong
        assert error(refused) == {
            "code": "unauthorized",
            "message": "The API token is not valid. Make a new one on the Account page.",
        }
    basic = requests.get(f"{api.url}/api/v1{path}", auth=("admin", "x"), timeout=30)
    assert basic.status_code == 401


def test_revoked_expired_and_disabled_users_tokens_stop_at_once(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    with session_scope(api.engine) as s:
        actor = operator(api.businesses[MAIN], "tests")
        now = dt.datetime.now(dt.UTC)
        revoked = create_token(s, actor, "staff2", now=now, name="to revoke")
        expired = create_token(s, actor, "staff2", now=now, name="short", expires_days=1)
        disabled = create_token(s, actor, "staff2", now=now, name="disabled user")
    for made in (revoked, expired, disabled):
        assert api.get("/reports", token=made.token).status_code == 200
    on_server_database(api, monkeypatch)
    assert main(["tokens", "revoke", str(revoked.info.id), "--business", MAIN]) == 0
    with session_scope(api.engine) as s:
        s.execute(
            update(ApiToken).where(ApiToken.id == expired.info.id).values(expires_at=dt.datetime(2020, 1, 1))
        )
    gone = api.get("/reports", token=revoked.token)
    assert gone.status_code == 401 and error(gone)["message"] == (
        "The API token 'to revoke' was revoked. Make a new one on the Account page."
    )
    assert "expired on 2020-01-01 00:00 UTC" in error(api.get("/runs", token=expired.token))["message"]
    try:
        with session_scope(api.engine) as s:
            s.execute(update(User).where(User.username == "staff2").values(active=False))
        off = api.get("/reports", token=disabled.token)
        assert off.status_code == 401
        assert error(off)["message"] == "Your account is disabled. Ask an administrator to enable it."
    finally:
        with session_scope(api.engine) as s:
            s.execute(update(User).where(User.username == "staff2").values(active=True))
    assert api.get("/reports", token=disabled.token).status_code == 200
    with session_scope(api.engine) as s:  # the refusals of known tokens are audited in their business
        refused = s.scalars(
            select(AuditEvent.detail)
            .where(AuditEvent.event_type == "api_call", AuditEvent.entity_id == str(revoked.info.id))
            .order_by(AuditEvent.id)
        ).all()
    assert [d["status"] for d in refused] == [200, 401] and refused[1]["token"] == "to revoke"


def test_the_role_is_read_on_every_call(api: Api) -> None:
    assert api.get("/reports/audit_log", "staff2").status_code == 404
    try:
        with session_scope(api.engine) as s:
            s.execute(update(User).where(User.username == "staff2").values(role="admin"))
        assert "audit_log" in [r["slug"] for r in api.get("/reports", "staff2").json()["reports"]]
    finally:
        with session_scope(api.engine) as s:
            s.execute(update(User).where(User.username == "staff2").values(role="staff"))
    assert "audit_log" not in [r["slug"] for r in api.get("/reports", "staff2").json()["reports"]]


# --- reports ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["admin", "manager", "staff", "b2staff"])
def test_the_reports_list_is_what_the_role_may_run(api: Api, who: str) -> None:
    response = api.get("/reports", who)
    assert response.status_code == 200
    listed = response.json()["reports"]
    role = {"admin": "admin", "manager": "manager"}.get(who, "staff")
    assert [r["slug"] for r in listed] == [d.slug for d in allowed_reports(Scope(1, who, role))]
    sales = next(r for r in listed if r["slug"] == "sales_summary")
    names = [p["name"] for p in sales["parameters"]]
    assert names[:5] == ["period", "start", "end", "tz", "now"] and "region" in names
    granularity = next(p for p in sales["parameters"] if p["name"] == "granularity")
    assert granularity["choices"] == ["auto", "day", "week", "month"] and granularity["default"] == "auto"
    assert sales["url"] == "/api/v1/reports/sales_summary"


@pytest.mark.parametrize("who", ["admin", "manager", "staff"])
def test_a_report_the_role_may_not_run_is_not_found(api: Api, who: str) -> None:
    response = api.report("audit_log", who)
    unknown = api.report("no_such_report", who)
    if who == "admin":
        assert response.status_code == 200 and response.json()["report"] == "audit_log"
        return
    assert response.status_code == unknown.status_code == 404
    allowed = ", ".join(d.slug for d in allowed_reports(Scope(1, who, who)))
    assert error(response) == {
        "code": "not_found",
        "message": f"Unknown report 'audit_log'; reports are: {allowed}.",
    }
    assert api.get("/reports/audit_log/tables/events", who, now=NOW).status_code == 404


@pytest.mark.parametrize(
    ("slug", "pairs"),
    [
        ("kpi_dashboard", ["period=last_month"]),
        ("sales_summary", ["start=2025-01-01", "end=2025-03-31", "granularity=week", "region=North,South"]),
        ("product_analysis", ["period=last_quarter", "tz=Europe/Berlin", "columns.products=revenue,sku"]),
        ("sales_lines", ["start=2024-12-01", "end=2025-04-30"]),
    ],
)
def test_the_json_is_byte_for_byte_the_command_lines(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slug: str, pairs: list[str]
) -> None:
    params = dict(pair.split("=", 1) for pair in pairs)
    response = api.report(slug, "manager", **params)  # first: built now, not served from the cache
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["Tallyboard-Cached"] == "false"
    assert "content-disposition" not in response.headers
    expected = cli_report(api, tmp_path, slug, [*pairs, f"now={NOW}"], monkeypatch)
    assert response.content == expected  # generated_at too: `now=` is the clock of both
    doc = response.json()
    assert doc["business"] == MAIN and doc["parameters"] == json.loads(expected)["parameters"]
    again = api.report(slug, "staff", **params)  # the same parameters: served from the run cache
    assert again.headers["Tallyboard-Cached"] == "true"
    assert again.content == expected


def test_files_open_with_their_names(api: Api) -> None:
    xlsx = api.report("kpi_dashboard", "staff", period="last_month", format="xlsx")
    assert xlsx.status_code == 200
    assert xlsx.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    name = xlsx.headers["content-disposition"].removeprefix('attachment; filename="').removesuffix('"')
    assert name.startswith("kpi_dashboard_20250101-20250131_") and name.endswith(".xlsx")
    book = openpyxl.load_workbook(io.BytesIO(xlsx.content), read_only=True)
    assert "Summary" in book.sheetnames and len(book.sheetnames) > 2
    doc = api.report("kpi_dashboard", "staff", period="last_month").json()
    summary = [row for row in book["Summary"].iter_rows(values_only=True) if row and any(row)]
    assert any(doc["title"] in str(cell) for row in summary for cell in row)

    csv_zip = api.report("kpi_dashboard", "staff", period="last_month", format="csv")
    assert csv_zip.headers["content-type"] == "application/zip"
    assert csv_zip.headers["content-disposition"].endswith('.zip"')
    with zipfile.ZipFile(io.BytesIO(csv_zip.content)) as bundle:
        assert "summary.csv" in bundle.namelist()
        assert {f"kpi_dashboard_{t}.csv" for t in doc["tables"]} <= set(bundle.namelist())

    pdf = api.report("kpi_dashboard", "staff", period="last_month", format="pdf")
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")

    one = api.report("sales_lines", "staff", period="last_month", format="csv")
    assert one.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(one.content.decode("utf-8-sig"))))
    assert len(rows) - 1 == len(
        api.report("sales_lines", "staff", period="last_month").json()["tables"]["lines"]
    )


def test_a_table_alone_as_records_and_as_csv(api: Api) -> None:
    doc = api.report("sales_summary", "manager", period="last_quarter", granularity="month").json()
    for table in ("by_region", "by_month", "by_customer"):
        records = api.get(
            f"/reports/sales_summary/tables/{table}",
            "manager",
            period="last_quarter",
            granularity="month",
            now=NOW,
        )
        assert records.status_code == 200 and records.headers["content-type"] == "application/json"
        assert records.json() == doc["tables"][table]
        as_csv = api.get(
            f"/reports/sales_summary/tables/{table}",
            "manager",
            period="last_quarter",
            granularity="month",
            now=NOW,
            format="csv",
        )
        assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
        assert f'filename="sales_summary_{table}_' in as_csv.headers["content-disposition"]
        assert as_csv.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs
        rows = list(csv.DictReader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
        assert [list(r) for r in rows[:1]] == [list(doc["tables"][table][0])]
        assert len(rows) == len(doc["tables"][table])
        for row, record in zip(rows, doc["tables"][table], strict=True):
            if "revenue" in record:
                assert row["revenue"] == f"{record['revenue']:.2f}"  # money exact to the cent
    lines = api.get("/reports/sales_lines/tables/lines", "staff", period="last_month", now=NOW, format="csv")
    assert lines.status_code == 200
    missing = api.get("/reports/sales_summary/tables/nope", "manager", period="last_quarter", now=NOW)
    assert missing.status_code == 404
    assert error(missing)["message"].startswith(
        "Report 'sales_summary' has no table 'nope'; its tables are: by_month,"
    )
    assert api.get("/reports/sales_lines/tables/nope", "staff", now=NOW, format="csv").status_code == 404


@pytest.mark.parametrize(
    ("slug", "query", "parameter"),
    [
        ("kpi_dashboard", {"period": "fortnight"}, "period"),
        ("kpi_dashboard", {"start": "2025-01-01"}, "end"),
        ("kpi_dashboard", {"start": "2025-02-30", "end": "2025-03-01"}, "start"),
        ("kpi_dashboard", {"start": "2025-03-01", "end": "2025-01-01"}, "start"),
        ("kpi_dashboard", {"start": "0001-01-01", "end": "2025-01-01"}, "start"),
        ("kpi_dashboard", {"tz": "Mars/Olympus"}, "tz"),
        ("kpi_dashboard", {"tz": "America"}, "tz"),
        ("kpi_dashboard", {"now": "yesterday"}, "now"),
        ("kpi_dashboard", {"granularity": "day"}, "granularity"),
        ("sales_summary", {"granularity": "hour"}, "granularity"),
        ("inventory_valuation", {"customer_type": "retail"}, "customer_type"),
        ("sales_summary", {"columns.by_region": "region,nope"}, "columns.by_region"),
        ("sales_summary", {"columns.nope": "region"}, "columns.nope"),
        ("kpi_dashboard", {"format": "docx"}, "format"),
        ("credit_aging", {"as_of": "someday"}, "as_of"),
    ],
)
def test_a_bad_parameter_is_400_naming_it(api: Api, slug: str, query: dict[str, str], parameter: str) -> None:
    response = api.report(slug, "admin", **query)
    assert response.status_code == 400, response.text
    body = error(response)
    assert body["code"] == "invalid_parameter" and body["parameter"] == parameter


def test_refusals_say_what_the_command_line_says(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for slug, pair in (
        ("kpi_dashboard", "period=fortnight"),
        ("sales_summary", "granularity=hour"),
        ("kpi_dashboard", "tz=Mars/Olympus"),
        ("sales_summary", "columns.by_region=region,nope"),
    ):
        key, value = pair.split("=", 1)
        api_message = error(api.report(slug, "admin", **{key: value}))["message"]
        assert api_message == cli_error(api, tmp_path, slug, pair, monkeypatch, capsys)


def test_runs_parameters_are_checked(api: Api) -> None:
    for query, parameter in (
        ({"limit": "0"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"status": "done"}, "status"),
        ({"since": "last week"}, "since"),
        ({"colour": "blue"}, "colour"),
    ):
        response = api.get("/runs", "admin", **query)
        assert response.status_code == 400 and error(response)["parameter"] == parameter


# --- runs -------------------------------------------------------------------------------------------


def test_history_as_each_role_may_see_it(api: Api) -> None:
    mine = api.report("payments", "staff", period="last_month")
    theirs = api.report("payments", "manager", period="last_quarter")
    assert mine.status_code == theirs.status_code == 200
    my_run, their_run = int(mine.headers["Tallyboard-Run-Id"]), int(theirs.headers["Tallyboard-Run-Id"])

    staff = api.get("/runs", "staff", limit=500).json()
    assert {r["user"] for r in staff["runs"]} == {"staff"} and staff["total"] == len(staff["runs"])
    assert my_run in [r["id"] for r in staff["runs"]] and their_run not in [r["id"] for r in staff["runs"]]
    assert api.get(f"/runs/{their_run}", "staff").status_code == 404

    for who in ("manager", "admin"):
        listed = api.get("/runs", who, limit=500, report="payments").json()["runs"]
        assert {my_run, their_run} <= {r["id"] for r in listed}
        assert {r["report"] for r in listed} == {"payments"}

    run = api.get(f"/runs/{my_run}", "manager").json()
    assert (run["report"], run["user"], run["trigger"], run["via"], run["status"]) == (
        "payments",
        "staff",
        "api",
        "API",
        "completed",
    )
    assert run["created_at"].endswith("+00:00") and run["formats"] == ["json"]
    stored = run["files"][0]
    assert stored["available"] and stored["url"] == f"/api/v1/runs/{my_run}/files/{stored['name']}"
    download = api.get(stored["url"].removeprefix("/api/v1"), "staff")
    assert download.status_code == 200 and download.content == mine.content
    assert download.headers["content-disposition"] == f'attachment; filename="{stored["name"]}"'
    assert api.get(f"/runs/{my_run}/files/other.json", "staff").status_code == 404

    since = api.get("/runs", "admin", since="2999-01-01").json()
    assert since["runs"] == [] and since["total"] == 0
    page = api.get("/runs", "admin", limit=1, offset=1).json()
    assert (page["limit"], page["offset"], len(page["runs"])) == (1, 1, 1)
    assert (
        api.get("/runs", "manager", status="failed").json()["runs"]
        == [r for r in api.get("/runs", "manager", limit=500).json()["runs"] if r["status"] == "failed"][:50]
    )


def test_no_id_of_one_business_is_reachable_with_the_others_token(api: Api) -> None:
    main_run = api.report("kpi_dashboard", "admin", period="last_month")
    other_run = api.report("kpi_dashboard", "b2admin", period="last_month")
    assert main_run.json()["business"] == MAIN and other_run.json()["business"] == OTHER
    assert main_run.json()["kpis"] != other_run.json()["kpis"]
    main_id, other_id = (
        int(main_run.headers["Tallyboard-Run-Id"]),
        int(other_run.headers["Tallyboard-Run-Id"]),
    )
    main_file = api.get(f"/runs/{main_id}", "admin").json()["files"][0]["name"]
    missing_id = 10**12
    for who, foreign, foreign_file, own_business in (
        ("b2admin", main_id, main_file, OTHER),
        ("b2staff", main_id, main_file, OTHER),
        ("admin", other_id, "x", MAIN),
        ("staff", other_id, "x", MAIN),
    ):
        gone = api.get(f"/runs/{foreign}", who)
        nothing = api.get(f"/runs/{missing_id}", who)
        assert gone.status_code == nothing.status_code == 404
        assert gone.json() == nothing.json() == {"error": {"code": "not_found", "message": "No such run."}}
        assert api.get(f"/runs/{foreign}/files/{foreign_file}", who).json() == nothing.json()
        listed = api.get("/runs", who, limit=500).json()["runs"]
        assert foreign not in [r["id"] for r in listed]
        if who.endswith("admin"):  # (staff always see only their own runs)
            other_admin = "admin" if own_business == OTHER else "b2admin"
            assert api.get("/runs", who, user=other_admin).json()["total"] == 0
        assert api.report("payments", who).json()["business"] == own_business
    with session_scope(api.engine) as s:
        runs = {r.id: r.business_id for r in s.scalars(select(Run).where(Run.trigger == "api"))}
    assert runs[main_id] == api.businesses[MAIN] and runs[other_id] == api.businesses[OTHER]


def test_bad_run_ids_are_not_found(api: Api) -> None:
    for run_id in ("0", "-1", "abc", str(2**63), "1e3", "%20"):
        response = api.get(f"/runs/{run_id}", "admin")
        assert response.status_code == 404 and error(response)["code"] == "not_found", run_id


# --- limits, audit, the rest --------------------------------------------------------------------------


def test_over_the_hourly_limit_is_429_with_retry_after(api: Api) -> None:
    from tests.api.conftest import DEFAULT_RATE_LIMIT

    cached = api.report("customer_performance", "admin", period="last_month")
    assert cached.status_code == 200
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with session_scope(api.engine) as s:
        for i in range(DEFAULT_RATE_LIMIT):
            s.add(
                Run(
                    business_id=api.businesses[MAIN],
                    report_slug="kpi_dashboard",
                    formats="pdf",
                    status="completed",
                    user_id=api.user_ids["staff2"],
                    username="staff2",
                    trigger="builder",
                    created_at=now - dt.timedelta(minutes=50 - i),
                )
            )
    limited = api.report("gross_profit", "staff2", period="last_month")
    assert limited.status_code == 429
    body = error(limited)
    assert body["code"] == "rate_limited"
    assert body["message"].startswith(
        f"You have generated {DEFAULT_RATE_LIMIT} reports in the last hour; the limit is"
    )
    assert 0 < int(limited.headers["Retry-After"]) <= 11 * 60
    # An identical report someone of the business generated before is no new generation: not limited.
    again = api.report("customer_performance", "staff2", period="last_month")
    assert again.status_code == 200 and again.headers["Tallyboard-Cached"] == "true"


def test_every_call_is_audited_with_its_token_name_and_last_use(api: Api) -> None:
    assert api.get("/runs", "b2staff").status_code == 200
    assert api.get("/reports/nope", "b2staff").status_code == 404
    with session_scope(api.engine) as s:
        events = s.scalars(
            select(AuditEvent)
            .where(AuditEvent.event_type == "api_call", AuditEvent.user == "b2staff")
            .order_by(AuditEvent.id)
        ).all()
        last_used = s.scalar(select(ApiToken.last_used_at).where(ApiToken.user_id == api.user_ids["b2staff"]))
        everything = " ".join(
            f"{e.user} {e.entity_id} {e.detail}" for e in s.scalars(select(AuditEvent)).all()
        )
    assert events and {e.business_id for e in events} == {api.businesses[OTHER]}
    calls = [(e.detail["path"], e.detail["status"], e.detail["token"]) for e in events[-2:]]
    assert calls == [("/api/v1/runs", 200, "b2staff tests"), ("/api/v1/reports/nope", 404, "b2staff tests")]
    assert last_used is not None and abs(
        last_used - dt.datetime.now(dt.UTC).replace(tzinfo=None)
    ) < dt.timedelta(minutes=5)
    for token in api.tokens.values():
        assert token not in everything
    assert all(token not in server_log(api) for token in api.tokens.values())


def test_other_addresses_under_api_answer_json(api: Api) -> None:
    nowhere = api.get("/nothing-here", "admin")
    assert nowhere.status_code == 404 and error(nowhere)["code"] == "not_found"
    posted = requests.post(
        f"{api.url}/api/v1/reports", headers={"Authorization": f"Bearer {api.tokens['admin']}"}, timeout=30
    )
    assert (
        posted.status_code == 405
        and posted.headers["Allow"] == "GET, HEAD"
        and error(posted)["code"] == "method_not_allowed"
    )
    assert requests.get(f"{api.url}/api", timeout=30).status_code == 404


def test_the_dashboard_is_served_on_the_same_port(api: Api) -> None:
    assert requests.get(f"{api.url}/_stcore/health", timeout=30).text == "ok"
    page = requests.get(f"{api.url}/", timeout=30)
    assert page.status_code == 200 and "<html" in page.text.lower()


def test_every_page_address_carries_the_history_guard_first(api: Api) -> None:
    """The browser-history guard (ui/browser_history) is in the page before Streamlit's own script, on
    every page address, also when the browser asks for gzip and names the copy it cached."""
    plain = requests.get(f"{api.url}/", headers={"Accept": "*/*"}, timeout=30)  # not a browser page load
    assert SCRIPT not in plain.content and plain.headers.get("ETag")
    browser = {
        "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
        "Accept-Encoding": "gzip, deflate",
        "If-None-Match": plain.headers["ETag"],
        "If-Modified-Since": plain.headers["Last-Modified"],
    }
    for path in ("/", "/sales", "/history?run=12"):
        page = requests.get(f"{api.url}{path}", headers=browser, timeout=30)
        assert page.status_code == 200, path  # never "304: keep your copy without the guard"
        body = page.content
        assert body.count(SCRIPT) == 1 and body.index(SCRIPT) < body.index(b"<script", body.index(SCRIPT) + 1)
        assert body.find(b"<head>") + len(b"<head>") == body.index(SCRIPT)
        assert int(page.headers["Content-Length"]) == len(body) == len(plain.content) + len(SCRIPT)
        assert "Content-Encoding" not in page.headers and "ETag" not in page.headers
    # The API and the page's own files are left as they are.
    answer = api.get("/reports", "admin")
    assert answer.status_code == 200 and SCRIPT not in answer.content
    openapi = requests.get(f"{api.url}/api/v1/openapi.json", headers=browser, timeout=30)
    assert openapi.status_code == 200 and openapi.json()["openapi"].startswith("3.1")


def test_every_report_answers_for_every_role_that_may_run_it(api: Api) -> None:
    for defn in REPORTS:
        for who in ("admin", "manager", "staff"):
            response = api.report(defn.slug, who)
            assert response.status_code == (200 if who in defn.roles else 404), (defn.slug, who)
            if response.status_code == 200:
                assert response.json()["report"] == defn.slug
