"""The one frozen settings object, read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from exc


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    """Configuration for every front door (app, CLI, daemon). Build with `Settings.from_env()`."""

    database_url: str
    data_dir: Path
    max_upload_bytes: int = 50 * 1024 * 1024
    max_xlsx_expanded_bytes: int = 500 * 1024 * 1024
    snapshot_dir: Path = field(default=Path())
    reports_dir: Path = field(default=Path())  # stored run files: reports/b{business}/{run}/{file}
    cache_hours: int = 24  # a run reuses an identical run's files over unchanged data this long
    rate_limit_per_hour: int = 10  # builder generations per user and hour (0 = no limit)
    max_file_bytes: int = 100 * 1024 * 1024  # one stored report file at most; larger fails the run
    # Login: `login_max_failures` wrong passwords within `login_window_minutes` lock the username
    # until the oldest of them leaves the window. The cookie key signs the login cookie (a JWT):
    # from TALLYBOARD_COOKIE_KEY, else the 0600 file data_dir/cookie.key (see accounts.cookie_key).
    login_max_failures: int = 5
    login_window_minutes: int = 15
    cookie_expiry_days: int = 7
    cookie_key: str = field(default="", repr=False)
    # Scheduler daemon: a window missed by downtime still runs when at most `grace_hours` old (older
    # ones are recorded as missed); a claim is leased for `lease_seconds` (renewed while it works),
    # then another daemon may take it over; `tick_seconds` between ticks (15-30). Run files older
    # than `retention_days` are deleted (an Admin AppSetting "retention_days" overrides it).
    grace_hours: float = 6
    lease_seconds: int = 600
    tick_seconds: int = 20
    retention_days: int = 30
    retention_batch: int = 200
    # Each daemon generates in `workers` worker processes, so one slow report never holds up the
    # others; an attempt still working after `work_timeout_minutes` is stopped and recorded "timed
    # out". A generation failing for a passing reason (a full disk, the database away, an import
    # changing the data meanwhile) is retried after min(retry_s * 2^(n-1), retry_cap_s) seconds,
    # for as long as the retry still falls within the window's grace period.
    workers: int = 2
    work_timeout_minutes: float = 30
    generation_retry_s: float = 60
    generation_retry_cap_s: float = 1800
    # Email (mail/delivery, mail/transports, core/secret_key). Until SMTP is set in Admin, messages are
    # written as .eml files to `outbox_dir`. The SMTP password is Fernet-encrypted with the key(s)
    # in TALLYBOARD_SECRET_KEY (comma-separated: the first encrypts, all decrypt) or else the 0600
    # file `secret_key_file`, created on first use. A message failing transiently is retried after
    # min(base * 2^(attempt-1), cap) seconds * (1 + up to `mail_jitter`), at most
    # `mail_max_attempts` attempts in all. Attachments over `attachment_limit_mb` in total become a
    # link to `public_url`'s History page when the schedule says "link". A message failing transiently
    # is retried for `mail_retry_hours` after it was queued (`mail_max_attempts` > 0 also caps the
    # attempts); a login the server refuses stops that server until its settings change.
    outbox_dir: Path = field(default=Path())
    secret_key: str = field(default="", repr=False)
    secret_key_file: Path = field(default=Path())
    attachment_limit_mb: float = 10
    public_url: str = "http://localhost:8501"
    mail_max_attempts: int = 0
    mail_retry_hours: float = 48
    mail_backoff_base_s: float = 60
    mail_backoff_cap_s: float = 3600
    mail_jitter: float = 0.2
    mail_lease_seconds: int = 600  # a sender that died mid-send is taken over after this
    smtp_timeout_s: float = 30
    smtp_ca_file: str = ""  # extra CA certificates to trust (a private or self-signed server)

    def __post_init__(self) -> None:
        if self.snapshot_dir == Path():
            object.__setattr__(self, "snapshot_dir", self.data_dir / "snapshots")
        if self.reports_dir == Path():
            object.__setattr__(self, "reports_dir", self.data_dir / "reports")
        if self.outbox_dir == Path():
            object.__setattr__(self, "outbox_dir", self.data_dir / "outbox")
        if self.secret_key_file == Path():
            object.__setattr__(self, "secret_key_file", self.data_dir / "secret.key")

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(os.environ.get("TALLYBOARD_DATA_DIR", str(PROJECT_ROOT / "data")))
        default_url = f"sqlite:///{data_dir / 'tallyboard.db'}"
        return cls(
            database_url=os.environ.get("DATABASE_URL") or default_url,
            data_dir=data_dir,
            max_upload_bytes=_int_env("TALLYBOARD_MAX_UPLOAD_MB", 50) * 1024 * 1024,
            max_xlsx_expanded_bytes=_int_env("TALLYBOARD_MAX_XLSX_EXPANDED_MB", 500) * 1024 * 1024,
            rate_limit_per_hour=_int_env("TALLYBOARD_RATE_LIMIT_PER_HOUR", 10),
            max_file_bytes=_int_env("TALLYBOARD_MAX_FILE_MB", 100) * 1024 * 1024,
            login_max_failures=_int_env("TALLYBOARD_LOGIN_MAX_FAILURES", 5),
            login_window_minutes=_int_env("TALLYBOARD_LOGIN_WINDOW_MINUTES", 15),
            cookie_expiry_days=_int_env("TALLYBOARD_COOKIE_EXPIRY_DAYS", 7),
            cookie_key=os.environ.get("TALLYBOARD_COOKIE_KEY", ""),
            grace_hours=_float_env("TALLYBOARD_GRACE_HOURS", 6),
            lease_seconds=_int_env("TALLYBOARD_LEASE_SECONDS", 600),
            tick_seconds=_int_env("TALLYBOARD_TICK_SECONDS", 20),
            retention_days=_int_env("TALLYBOARD_RETENTION_DAYS", 30),
            workers=_int_env("TALLYBOARD_WORKERS", 2),
            work_timeout_minutes=_float_env("TALLYBOARD_WORK_TIMEOUT_MINUTES", 30),
            generation_retry_s=_float_env("TALLYBOARD_GENERATION_RETRY_S", 60),
            outbox_dir=Path(os.environ.get("TALLYBOARD_OUTBOX_DIR") or data_dir / "outbox"),
            secret_key=os.environ.get("TALLYBOARD_SECRET_KEY", ""),
            attachment_limit_mb=_float_env("TALLYBOARD_ATTACHMENT_LIMIT_MB", 10),
            public_url=os.environ.get("TALLYBOARD_PUBLIC_URL") or "http://localhost:8501",
            mail_max_attempts=_int_env("TALLYBOARD_MAIL_MAX_ATTEMPTS", 0),
            mail_retry_hours=_float_env("TALLYBOARD_MAIL_RETRY_HOURS", 48),
            mail_backoff_base_s=_float_env("TALLYBOARD_MAIL_BACKOFF_S", 60),
            mail_backoff_cap_s=_float_env("TALLYBOARD_MAIL_BACKOFF_CAP_S", 3600),
            mail_lease_seconds=_int_env("TALLYBOARD_MAIL_LEASE_SECONDS", 600),
            smtp_timeout_s=_float_env("TALLYBOARD_SMTP_TIMEOUT_S", 30),
            smtp_ca_file=os.environ.get("TALLYBOARD_SMTP_CA_FILE", ""),
        )

    def with_changes(self, **changes: object) -> Settings:
        """A copy with some fields replaced (tests and tools)."""
        return replace(self, **changes)  # type: ignore[arg-type]
