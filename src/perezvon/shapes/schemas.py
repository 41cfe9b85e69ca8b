"""Request bodies of the admin REST API (camelCase on the wire, like the public API)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from ..domain.destinations import ANY_COUNTRY, country_code_error
from ..domain.phone import normalize_admin_phone
from ..domain.schedule import parse_utc_offset

# Counters live in 32-bit integer columns: a larger value is refused as invalid, not overflowed in the database.
MAX_INT32 = 2**31 - 1
Count = Annotated[int, Field(ge=0, le=MAX_INT32)]


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


def _origin(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") or parts.query:
        raise ValueError(f"an origin is scheme://host[:port] with nothing after it, got {value!r}")
    return f"{parts.scheme}://{parts.netloc}".lower()


def _phones(values: list[str]) -> list[str]:
    return [normalize_admin_phone(v) for v in values]


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"not an IANA time zone name: {value!r} (e.g. Europe/Moscow, UTC)") from exc
    return value


def _country_list(values: list[str]) -> list[str]:
    problems = [p for p in (country_code_error(v) for v in values) if p]
    if problems:
        raise ValueError(problems[0])
    if not values:
        raise ValueError('allowedCountries needs at least one country, or ["*"] for any')
    return [ANY_COUNTRY] if ANY_COUNTRY in values else list(dict.fromkeys(values))


class Trunk(CamelModel):
    host: Annotated[str, Field(min_length=1, max_length=255)]
    port: Annotated[int, Field(ge=1, le=65535)] = 5060
    transport: Annotated[str, Field(pattern="^(udp|tcp|tls)$")] = "udp"
    username: str = ""
    password: str = ""
    caller: str = ""
    number_format: str = "{number}"
    caller_id: Annotated[str, Field(pattern="^(display|user)$")] = "display"  # how the operator sees the visitor
    assert_identity: bool = False  # P-Asserted-Identity
    srtp: Annotated[str, Field(pattern="^(off|optional|required)$")] = "off"
    direct_media: bool = False  # bridged calls' media may flow end to end (not when recording)


class SiteIn(CamelModel):
    name: Annotated[str, Field(min_length=1, max_length=255)]
    allowed_origins: list[str] = []
    timezone: str = "UTC"
    minutes_balance: Count = 1000
    callback_active: bool = True
    api_points_per_day: Count = 50_000
    api_point_costs: dict[str, Count] | None = None
    non_working_policy: Annotated[str, Field(pattern="^(finish|defer)$")] = "finish"
    record_calls: bool = False
    webhook_urls: list[Annotated[str, Field(pattern="^https?://")]] = []
    trunk: Trunk | None = None
    account_id: Annotated[int, Field(ge=1, le=2**63 - 1, strict=True)] | None = None
    allowed_countries: Annotated[list[str], Field(max_length=300)] | None = None  # None: the timezone's country
    max_requests_per_number_per_day: Count = 5

    _origins = field_validator("allowed_origins")(lambda cls, v: [_origin(o) for o in v])
    _tz = field_validator("timezone")(lambda cls, v: _zone(v))
    _countries = field_validator("allowed_countries")(lambda cls, v: None if v is None else _country_list(v))


class SitePatch(CamelModel):
    name: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    allowed_origins: list[str] | None = None
    timezone: str | None = None
    minutes_balance: Count | None = None
    callback_active: bool | None = None
    api_points_per_day: Count | None = None
    api_point_costs: dict[str, Count] | None = None
    non_working_policy: Annotated[str, Field(pattern="^(finish|defer)$")] | None = None
    record_calls: bool | None = None
    webhook_urls: list[Annotated[str, Field(pattern="^https?://")]] | None = None
    trunk: Trunk | None = None
    allowed_countries: Annotated[list[str], Field(max_length=300)] | None = None
    max_requests_per_number_per_day: Count | None = None

    _origins = field_validator("allowed_origins")(lambda cls, v: None if v is None else [_origin(o) for o in v])
    _tz = field_validator("timezone")(lambda cls, v: None if v is None else _zone(v))
    _countries = field_validator("allowed_countries")(lambda cls, v: None if v is None else _country_list(v))


class HourCell(CamelModel):
    day_of_week: Annotated[int, Field(ge=1, le=7)]
    hour: Annotated[int, Field(ge=0, le=23)]


class Schedule(CamelModel):
    """A widget's working hours. ``timezone`` (IANA) is what counts; ``utcTimezone`` is read-only (the
    zone's current offset) and, sent without ``timezone``, keeps that fixed offset as before."""

    timezone: str | None = None
    utc_timezone: str | None = None
    hours: list[HourCell] | None = None  # None: all week on create, unchanged on update

    _tz = field_validator("timezone")(lambda cls, v: None if v is None else _zone(v))

    @field_validator("utc_timezone")
    @classmethod
    def _offset(cls, v: str | None) -> str | None:
        if v is not None:
            parse_utc_offset(v)
        return v


class Throttle(CamelModel):
    user_timeout_seconds: Count = 0
    max_requests_per_phone: Count = 0
    period_seconds: Count = 3600


class CallbackSettings(CamelModel):
    announcement: bool = True
    operator_confirm: bool = False
    ring_timeout_seconds: Annotated[int, Field(ge=5, le=120)] = 30
    redial_attempts: Annotated[int, Field(ge=0, le=10)] = 2
    redial_interval_seconds: Annotated[int, Field(ge=10, le=86400)] = 60
    # After a busy line / no answer, each its own interval; None: redialIntervalSeconds.
    redial_busy_interval_seconds: Annotated[int, Field(ge=10, le=86400)] | None = None
    redial_no_answer_interval_seconds: Annotated[int, Field(ge=10, le=86400)] | None = None
    language: Annotated[str, Field(pattern="^(ru|en)$")] = "ru"


HEX_COLOR = "^#[0-9a-fA-F]{6}$"


class DisplaySchedule(CamelModel):
    """When the drop-in widget shows, in the widget schedule's time zone: these days, fromHour to toHour."""

    days: list[Annotated[int, Field(ge=1, le=7)]] = [1, 2, 3, 4, 5, 6, 7]
    from_hour: Annotated[int, Field(ge=0, le=23)] = 0
    to_hour: Annotated[int, Field(ge=1, le=24)] = 24

    @field_validator("days")
    @classmethod
    def _days(cls, v: list[int]) -> list[int]:
        return sorted(set(v))

    @model_validator(mode="after")
    def _order(self) -> DisplaySchedule:
        if self.to_hour <= self.from_hour:
            raise ValueError("toHour must be after fromHour")
        return self


class WidgetUi(CamelModel):
    """The drop-in widget ``ctw.js`` renders on the site's pages (DESIGN §7 "Widgets on the page")."""

    enabled: bool = False
    color: Annotated[str, Field(pattern=HEX_COLOR)] = "#1a56db"
    position: Annotated[str, Field(pattern="^(bottom-right|bottom-left)$")] = "bottom-right"
    title: Annotated[str, Field(max_length=100)] = ""  # "" = the language's default text
    language: Annotated[str, Field(pattern="^(ru|en)$")] = "ru"
    button_text: Annotated[str, Field(max_length=60)] = ""
    name_field: Annotated[str, Field(pattern="^(off|optional|required)$")] = "off"
    consent_text: Annotated[str, Field(max_length=500)] = ""
    # URL patterns: "*" matches anything, a leading "!" excludes; none = every page.
    pages: Annotated[list[Annotated[str, Field(min_length=1, max_length=255)]], Field(max_length=50)] = []
    delay_seconds: Annotated[int, Field(ge=0, le=600)] = 0
    display_schedule: DisplaySchedule = DisplaySchedule()

    @field_validator("title", "button_text", "consent_text")
    @classmethod
    def _strip(cls, v: str) -> str:
        return v.strip()

    @field_validator("pages")
    @classmethod
    def _pages(cls, v: list[str]) -> list[str]:
        return [p.strip() for p in v if p.strip()]


class WidgetAnalytics(CamelModel):
    """Events ``ctw.js`` sends to the page's analytics when a request is created."""

    enabled: bool = False
    goal: Annotated[str, Field(pattern="^[A-Za-z0-9_.-]{1,64}$")] = "callback_request"
    metrika_counter_id: Annotated[int, Field(ge=1)] | None = None


_HH_MM = "^([01][0-9]|2[0-3]):[0-5][0-9]$"


class QuietHours(CamelModel):
    """When redials and collected requests do not call, in the visitor's time (DESIGN §7, #11)."""

    start: Annotated[str, Field(pattern=_HH_MM)] = "21:00"
    end: Annotated[str, Field(pattern=_HH_MM)] = "09:00"


class WidgetIn(CamelModel):
    route_key: Annotated[str, Field(min_length=1, max_length=255)]
    name: Annotated[str, Field(max_length=255)] = ""
    enabled: bool = True
    operator_phones: list[str] = []
    schedule: Schedule | None = None
    collect_non_working_requests: bool = True
    throttle: Throttle = Throttle()
    callback: CallbackSettings = CallbackSettings()
    ui: WidgetUi = WidgetUi()
    analytics: WidgetAnalytics = WidgetAnalytics()
    voicemail_detection: bool = True  # DESIGN §7: an answering machine is hung up on, not bridged
    quiet_hours: QuietHours | None = QuietHours()  # null: none

    _phones = field_validator("operator_phones")(lambda cls, v: _phones(v))


class WidgetPatch(CamelModel):
    route_key: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    name: Annotated[str, Field(max_length=255)] | None = None
    enabled: bool | None = None
    operator_phones: list[str] | None = None
    schedule: Schedule | None = None
    collect_non_working_requests: bool | None = None
    throttle: Throttle | None = None
    callback: CallbackSettings | None = None
    ui: WidgetUi | None = None
    analytics: WidgetAnalytics | None = None
    voicemail_detection: bool | None = None
    quiet_hours: QuietHours | None = None  # given as null: no quiet hours

    _phones = field_validator("operator_phones")(lambda cls, v: None if v is None else _phones(v))


class UnitIn(CamelModel):
    name: Annotated[str, Field(min_length=1, max_length=255)]
    phone: str

    _phone = field_validator("phone")(lambda cls, v: normalize_admin_phone(v))


class UnitPatch(CamelModel):
    name: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    phone: str | None = None

    _phone = field_validator("phone")(lambda cls, v: None if v is None else normalize_admin_phone(v))


class BlacklistIn(CamelModel):
    phone: str
    comment: Annotated[str, Field(max_length=255)] = ""

    _phone = field_validator("phone")(lambda cls, v: normalize_admin_phone(v))
