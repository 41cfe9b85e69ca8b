"""Which numbers a site may have called (DESIGN §7 "Destinations"): toll-fraud protection. Pure rules.

A public callback form dials whatever a stranger types, on the owner's trunk and at the owner's cost.
Premium-rate and shared-cost numbers (the caller pays the callee: ``7809…``, ``1900…``) and numbers
``phonenumbers`` cannot classify are never called, whatever the site allows; every other number must be
in one of the site's ``allowedCountries`` (``["*"]`` allows any), so a Russian shop's form cannot be
made to ring Jamaica (``1876…``, the classic "one ring" range).
"""

from __future__ import annotations

import functools
from importlib import resources

import phonenumbers
from phonenumbers import PhoneNumberType

ANY_COUNTRY = "*"
# A zone with no country of its own (UTC, Etc/GMT+3): the project's home market.
FALLBACK_COUNTRY = "RU"
NEVER_CALLED = {
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.SHARED_COST: "a shared-cost number",
    PhoneNumberType.UNKNOWN: "a number of unknown type (not a valid number for its country)",
}


def number_country(digits: str) -> str | None:
    """The ISO 3166 alpha-2 region of an 11-or-so digit number with country code, or None."""
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.region_code_for_number(number)


def destination_problem(digits: str, allowed_countries: list[str] | tuple[str, ...]) -> str | None:
    """Why ``digits`` may not be called for a site allowing ``allowed_countries``, or None."""
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return "This number is never called: it is not a phone number"
    kind = NEVER_CALLED.get(phonenumbers.number_type(number))
    if kind is not None:
        return f"This number is never called: it is {kind}"
    if ANY_COUNTRY in allowed_countries:
        return None
    country = phonenumbers.region_code_for_number(number)
    if country not in allowed_countries:
        return (
            f"Calls to this number's country ({country}) are not allowed for this site "
            f"(allowedCountries: {', '.join(allowed_countries) or 'none'})"
        )
    return None


def country_code_error(code: object) -> str | None:
    """Why ``code`` is not an entry of allowedCountries (an ISO 3166 alpha-2 code, or "*"), or None."""
    if code == ANY_COUNTRY:
        return None
    if not isinstance(code, str) or len(code) != 2 or not code.isascii() or not code.isupper():
        return f"a country is an ISO 3166 alpha-2 code such as RU or KZ, or * for any, got {code!r}"
    if code not in phonenumbers.SUPPORTED_REGIONS:
        return f"{code} is not a country phonenumbers knows (e.g. RU, KZ, US)"
    return None


@functools.cache
def _zone_countries() -> dict[str, str]:
    """IANA zone → its country, from the tz database's zone.tab (shipped by the tzdata package, like the
    zones ZoneInfo reads: data, not I/O of ours)."""
    text = (resources.files("tzdata") / "zoneinfo" / "zone.tab").read_text(encoding="utf-8")
    table: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            parts = line.split("\t")
            if len(parts) >= 3:
                table[parts[2]] = parts[0]
    return table


def _zone_bytes(zone: str) -> bytes | None:
    try:
        return (resources.files("tzdata") / "zoneinfo" / zone).read_bytes()
    except (OSError, ValueError):
        return None


@functools.cache
def country_of_zone(zone: str) -> str | None:
    """The country of an IANA zone; an old name (Europe/Kiev) is found by its data, the same as its
    current name's (the tz database ships links as copies)."""
    table = _zone_countries()
    if zone in table:
        return table[zone]
    data = _zone_bytes(zone)
    if data is None:
        return None
    for name, country in table.items():
        if _zone_bytes(name) == data:
            return country
    return None


def default_countries(zone: str) -> list[str]:
    """A new site's allowedCountries: its time zone's country (Europe/Moscow → RU), else ["RU"] (UTC)."""
    return [country_of_zone(zone) or FALLBACK_COUNTRY]


@functools.cache
def country_names() -> dict[str, str]:
    """ISO 3166 alpha-2 code → English name (the tz database's iso3166.tab), for pickers."""
    text = (resources.files("tzdata") / "zoneinfo" / "iso3166.tab").read_text(encoding="utf-8")
    pairs = (line.split("\t", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {code: name.strip() for code, name in pairs if code in phonenumbers.SUPPORTED_REGIONS}


# What to do with a due request that must not be dialled now (``dial_problem``).
WITHDRAW = "cancelled"  # ends with no new attempt
WAIT = "pending"  # stays pending: picked up again after a top-up


def dial_problem(
    phone: str, allowed_countries: list[str], blacklisted: bool, balance: int, policy: str
) -> tuple[str, str] | None:
    """Right before dialling (DESIGN §7): (what becomes of the request, why), or None to dial.

    A number blacklisted or no longer allowed since the request was accepted is not called; nor is any
    number while the site's balance cannot pay a first minute (``defer`` sites wait for a top-up).
    """
    if blacklisted:
        return WITHDRAW, "the number was blacklisted after the request was accepted"
    problem = destination_problem(phone, allowed_countries)
    if problem is not None:
        return WITHDRAW, problem
    if balance < 1:
        if policy == "defer":
            return WAIT, "the site has no minutes left; the request waits for a top-up"
        return WITHDRAW, "the site has no minutes left to pay a first minute"
    return None
