"""The database schema: every entity of SPEC section 1, plus businesses, users and imports.

Money columns end in `_micros` and hold integer millionths of the currency unit (see money.py),
so sums are exact integers on SQLite and PostgreSQL alike. Quantities are NUMERIC(18, 3).
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

CUSTOMER_TYPES = ("retail", "wholesale")
SALE_STATUSES = ("draft", "completed", "void", "refunded")
PAYMENT_METHODS = ("cash", "card", "bank_transfer", "mobile", "credit_note")
ROLES = ("admin", "manager", "staff")


def Quantity() -> Numeric[float]:  # noqa: N802 - reads like a column type
    """Quantities: exact NUMERIC(18, 3) in the database, floats in Python."""
    return Numeric(18, 3, asdecimal=False)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def new_data_token() -> str:
    """A random token naming one committed state of a business's data (never reused)."""
    return secrets.token_hex(16)


class Business(Base):
    """A tenant. `data_version` goes up by one with every successful import or demo load (a count
    for people); `data_token` is replaced by a random one at the same moment and is what caches and
    snapshots are keyed by, because a counter repeats across databases and restored backups."""

    __tablename__ = "businesses"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    data_version: Mapped[int] = mapped_column(Integer, default=0)
    data_token: Mapped[str] = mapped_column(String(32), default=new_data_token, nullable=True)
    data_updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    # Days its stored report files are kept (its admin sets it); NULL: the installation default.
    retention_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Where failure notices and the weekly summary go when neither the schedule's owner nor any
    # active admin has an email address (its admin sets it; "" = none).
    notice_email: Mapped[str] = mapped_column(String(254), default="", server_default="")


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    username: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    password_hash: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    # Goes up at logout, password, role or status change: login cookies carry it, and one with an
    # older number (or a session that started under one) is logged out.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ApiToken(Base):
    """A user's token for the HTTP API (accounts/tokens.py). Only the SHA-256 of the token is stored;
    the token itself is shown once, when it is made. It acts as its user, whose role and active flag
    are read again on every call; a revoked or expired token lets nobody in."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        UniqueConstraint("token_hash"),
        Index("ix_api_tokens_business", "business_id"),
        Index("ix_api_tokens_user", "user_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64))  # hex SHA-256 of the token
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    created_by: Mapped[str] = mapped_column(String(80), default="")  # the user, or "cli"
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)  # None: never
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("business_id", "customer_code"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    customer_code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    customer_type: Mapped[str] = mapped_column(String(20))
    region: Mapped[str] = mapped_column(String(100))
    credit_limit_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    email: Mapped[str] = mapped_column(String(254), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("business_id", "sku"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(100))
    unit_cost_micros: Mapped[int] = mapped_column(BigInteger)
    unit_price_micros: Mapped[int] = mapped_column(BigInteger)
    reorder_level: Mapped[float] = mapped_column(Quantity(), default=0)


class Storefront(Base):
    __tablename__ = "storefronts"
    __table_args__ = (UniqueConstraint("business_id", "code"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(100))


class Sale(Base):
    """An order. `net_micros`/`cost_micros` are the sums of its lines, kept current on import."""

    __tablename__ = "sales"
    __table_args__ = (
        UniqueConstraint("business_id", "order_id"),
        Index("ix_sales_business_date", "business_id", "order_date"),
        Index("ix_sales_customer", "customer_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    order_id: Mapped[str] = mapped_column(String(64))
    order_date: Mapped[dt.date] = mapped_column(Date)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    storefront_id: Mapped[int | None] = mapped_column(ForeignKey("storefronts.id"), nullable=True)
    sales_rep: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(20))
    net_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_micros: Mapped[int] = mapped_column(BigInteger, default=0)


class SaleLine(Base):
    """One line of an order; natural key (order, line_no), so an order may list one product on several
    lines (a till scanning an item twice). Net and cost are stored exactly."""

    __tablename__ = "sale_lines"
    __table_args__ = (
        UniqueConstraint("sale_id", "line_no", name="uq_sale_lines_sale_line_no"),
        Index("ix_sale_lines_business", "business_id"),
        Index("ix_sale_lines_product", "product_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    sale_id: Mapped[int] = mapped_column(ForeignKey("sales.id", ondelete="CASCADE"))
    line_no: Mapped[int] = mapped_column(
        Integer
    )  # 1, 2, ... within the order: the file's line_no or position
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[float] = mapped_column(Quantity())
    unit_price_micros: Mapped[int] = mapped_column(BigInteger)
    unit_cost_micros: Mapped[int] = mapped_column(BigInteger)
    discount: Mapped[float] = mapped_column(Numeric(9, 6, asdecimal=False), default=0)
    net_micros: Mapped[int] = mapped_column(BigInteger)
    cost_micros: Mapped[int] = mapped_column(BigInteger)


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("business_id", "payment_id"),
        Index("ix_payments_business_paid", "business_id", "paid_at"),
        Index("ix_payments_sale", "sale_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    payment_id: Mapped[str] = mapped_column(String(64))
    sale_id: Mapped[int] = mapped_column(ForeignKey("sales.id", ondelete="CASCADE"))
    paid_at: Mapped[dt.datetime] = mapped_column(DateTime)
    amount_micros: Mapped[int] = mapped_column(BigInteger)
    method: Mapped[str] = mapped_column(String(20))


class Forecast(Base):
    """One forecast submission; the latest submitted_at per (cycle, customer, product) counts."""

    __tablename__ = "forecasts"
    __table_args__ = (
        UniqueConstraint("business_id", "cycle", "customer_id", "product_id", "submitted_at"),
        Index("ix_forecasts_business_cycle", "business_id", "cycle"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    cycle: Mapped[str] = mapped_column(String(7))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    sales_rep: Mapped[str] = mapped_column(String(100), default="")
    quantity: Mapped[float] = mapped_column(Quantity())
    submitted_at: Mapped[dt.datetime] = mapped_column(DateTime)


class InventoryLevel(Base):
    """Stock of a product at a storefront as of a date; the latest as_of counts."""

    __tablename__ = "inventory"
    __table_args__ = (UniqueConstraint("business_id", "storefront_id", "product_id", "as_of"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    storefront_id: Mapped[int] = mapped_column(ForeignKey("storefronts.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[float] = mapped_column(Quantity())
    as_of: Mapped[dt.date] = mapped_column(Date)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_business_at", "business_id", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    user: Mapped[str] = mapped_column(String(80), default="")
    event_type: Mapped[str] = mapped_column(String(60))
    entity: Mapped[str] = mapped_column(String(60), default="")
    entity_id: Mapped[str] = mapped_column(String(100), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ip: Mapped[str] = mapped_column(String(64), default="")


class ImportBatch(Base):
    """One accepted or rejected import file: the Data page's import history."""

    __tablename__ = "import_batches"
    __table_args__ = (Index("ix_import_batches_business_at", "business_id", "created_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    entity: Mapped[str] = mapped_column(String(20))
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(20))
    rows: Mapped[int] = mapped_column(Integer, default=0)
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    username: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, server_default=func.now())


class SavedReport(Base):
    """A named builder setup: report + parameters + formats. System templates have no owner."""

    __tablename__ = "saved_reports"
    __table_args__ = (Index("ix_saved_reports_business", "business_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    report_slug: Mapped[str] = mapped_column(String(60))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    formats: Mapped[str] = mapped_column(String(60), default="xlsx")
    is_template: Mapped[bool] = mapped_column(Boolean, default=False)
    system: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class Run(Base):
    """One generation of a report (from the builder, a page, the CLI or a schedule)."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_business_created", "business_id", "created_at"),
        Index("ix_runs_cache", "business_id", "cache_key"),
        Index("ix_runs_user_created", "user_id", "created_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    report_slug: Mapped[str] = mapped_column(String(60))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    formats: Mapped[str] = mapped_column(String(60))
    cache_key: Mapped[str] = mapped_column(String(64), default="")
    data_version: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    source_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), nullable=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    username: Mapped[str] = mapped_column(String(80), default="")
    saved_report_id: Mapped[int | None] = mapped_column(
        ForeignKey("saved_reports.id", ondelete="SET NULL"), nullable=True
    )
    schedule_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    trigger: Mapped[str] = mapped_column(String(20), default="builder")
    rows: Mapped[int] = mapped_column(Integer, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    duration_s: Mapped[float] = mapped_column(Numeric(12, 3, asdecimal=False), default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    expired_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class RunFile(Base):
    """A file a run produced, stored under the reports folder; served only by id after a scope check."""

    __tablename__ = "run_files"
    __table_args__ = (Index("ix_run_files_run", "run_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    fmt: Mapped[str] = mapped_column(String(10))
    file_name: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(String(500))
    mime: Mapped[str] = mapped_column(String(100))
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class LoginAttempt(Base):
    """Every login try, kept for lockout within a time window and for the audit trail."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_username_at", "username", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(80))
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    success: Mapped[bool] = mapped_column(Boolean, default=False)
    ip: Mapped[str] = mapped_column(String(64), default="")


class Schedule(Base):
    """A report emailed on a time rule, in the schedule's own IANA time zone.

    `rule` holds the time rule as JSON, by `rule_kind`:
    daily {"time": "HH:MM"}; weekly {"time", "weekdays": [0..6] (Monday = 0)};
    monthly {"time", "day": 1..28 | "last"}; every_n_days {"time", "n", "start": "YYYY-MM-DD"};
    cron {"expr": "m h dom mon dow"}.
    """

    __tablename__ = "schedules"
    __table_args__ = (
        Index("ix_schedules_business", "business_id"),
        Index("ix_schedules_next_due", "active", "next_due_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    name: Mapped[str] = mapped_column(String(120))
    saved_report_id: Mapped[int | None] = mapped_column(
        ForeignKey("saved_reports.id", ondelete="SET NULL"), nullable=True
    )
    report_slug: Mapped[str] = mapped_column(String(60))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    formats: Mapped[str] = mapped_column(String(60), default="pdf")
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    subject: Mapped[str] = mapped_column(String(250), default="{report} for {period}")
    message: Mapped[str] = mapped_column(Text, default="")
    rule_kind: Mapped[str] = mapped_column(String(20))
    rule: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    period: Mapped[str] = mapped_column(String(30), default="last_month")
    skip_if_empty: Mapped[bool] = mapped_column(Boolean, default=False)
    large_file_mode: Mapped[str] = mapped_column(String(10), default="link")
    notify_success: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Webhook and Slack incoming-webhook URLs (mail/webhooks.py), besides or instead of `recipients`.
    # Webhook bodies are signed with the schedule's secret, Fernet-encrypted like the SMTP password.
    webhooks: Mapped[list[str]] = mapped_column(JSON, default=list)
    slack_webhooks: Mapped[list[str]] = mapped_column(JSON, default=list)
    webhook_secret_encrypted: Mapped[str] = mapped_column(Text, default="", server_default="")
    webhook_key_fingerprint: Mapped[str] = mapped_column(String(64), default="", server_default="")
    # An alert: send only when `alert_kpi alert_op alert_value` holds (alert_kpi "" = always send);
    # with alert_on_change only when it turns from false to true. The value is exact decimal text.
    alert_kpi: Mapped[str] = mapped_column(String(60), default="", server_default="")
    alert_op: Mapped[str] = mapped_column(String(2), default="", server_default="")
    alert_value: Mapped[str] = mapped_column(String(40), default="", server_default="")
    alert_on_change: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    next_due_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    last_due_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class ScheduleRun(Base):
    """One (schedule, due time) window. The unique key is what makes a claim happen exactly once."""

    __tablename__ = "schedule_runs"
    __table_args__ = (
        UniqueConstraint("schedule_id", "due_at"),
        Index("ix_schedule_runs_status_lease", "status", "lease_until"),
        Index("ix_schedule_runs_business", "business_id", "due_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"))
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    due_at: Mapped[dt.datetime] = mapped_column(DateTime)  # UTC
    status: Mapped[str] = mapped_column(String(20), default="claimed")
    claimed_by: Mapped[str] = mapped_column(String(120), default="")
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    # A passing failure (full disk, database away, data changed meanwhile) waits in status 'retrying'
    # until retry_at; `retries` counts them, apart from the takeovers of a dead daemon's claim.
    retries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    retry_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    # The schedule's alert as evaluated for this window: the KPI value seen (text) and whether the
    # condition held (None: no alert, or not evaluated).
    alert_seen: Mapped[str | None] = mapped_column(String(60), nullable=True)
    alert_held: Mapped[bool | None] = mapped_column(Boolean, nullable=True)


class OutboxMessage(Base):
    """One email to one recipient; the Message-ID is fixed before the first attempt."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("message_id"),
        Index("ix_outbox_status_next", "status", "next_attempt_at"),
        Index("ix_outbox_schedule_run", "schedule_run_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    schedule_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("schedule_runs.id", ondelete="CASCADE"), nullable=True
    )
    kind: Mapped[str] = mapped_column(String(30), default="report")
    recipient: Mapped[str] = mapped_column(String(254))
    message_id: Mapped[str] = mapped_column(String(250))
    subject: Mapped[str] = mapped_column(String(250), default="")
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    # The .eml file it was written to when no SMTP server was set (status "sent" then means written
    # to the outbox folder, not sent to anyone); "" when a mail server took it.
    written_to: Mapped[str] = mapped_column(String(500), default="", server_default="")


class DaemonHeartbeat(Base):
    """A running scheduler daemon's last sign of life, shown in the app."""

    __tablename__ = "daemon_heartbeats"
    daemon_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(200), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    status: Mapped[str] = mapped_column(String(20), default="running")


class SmtpSettings(Base):
    """An SMTP server and sender: one row per business that set its own (its admin), and at most one
    installation default (business_id NULL, set by the operator only). The password is Fernet-encrypted.
    A business row with an empty host keeps only the sender name and reply-to (the default server sends)."""

    __tablename__ = "smtp_settings"
    __table_args__ = (UniqueConstraint("business_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    business_id: Mapped[int | None] = mapped_column(
        ForeignKey("businesses.id", ondelete="CASCADE"), nullable=True
    )
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer, default=587)
    security: Mapped[str] = mapped_column(String(10), default="starttls")
    username: Mapped[str] = mapped_column(String(255), default="")
    password_encrypted: Mapped[str] = mapped_column(Text, default="")
    from_address: Mapped[str] = mapped_column(String(254))
    from_name: Mapped[str] = mapped_column(String(200), default="Tallyboard")
    reply_to: Mapped[str] = mapped_column(String(254), default="")
    key_fingerprint: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class SmtpFailure(Base):
    """SMTP settings whose login the server refused (a configuration error, not a passing one): the
    settings with this fingerprint are not used again; changed settings have another fingerprint."""

    __tablename__ = "smtp_failures"
    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    server: Mapped[str] = mapped_column(String(300), default="")
    error: Mapped[str] = mapped_column(Text, default="")
    failed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class AppSetting(Base):
    """Installation-wide settings edited in Admin (retention days, grace hours, notices)."""

    __tablename__ = "app_settings"
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
