"""What the drop-in widget needs from the server to read a number typed the local way: the site's phone plan."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import phonenumbers


@lru_cache(maxsize=1)
def _zone_countries() -> dict[str, str]:
    # tzdata's zone.tab: "RU\t+5545+03735\tEurope/Moscow\t..." (one country per zone, the zone's main one).
    text = resources.files("tzdata").joinpath("zoneinfo/zone.tab").read_text(encoding="utf-8")
    pairs = (line.split("\t") for line in text.splitlines() if line and not line.startswith("#"))
    return {cols[2]: cols[0] for cols in pairs if len(cols) >= 3}


def zone_country(zone: str, default: str = "RU") -> str:
    """The ISO 3166 country of an IANA zone (Europe/Moscow → RU); ``default`` for UTC and the like."""
    return _zone_countries().get(zone, default)


def phone_plan(country: str) -> dict[str, str]:
    """What the widget needs to turn a number typed the local way into the API's 11 digits:
    the country calling code (RU: "7") and the national trunk prefix replaced by it (RU: "8")."""
    code = phonenumbers.country_code_for_region(country) or 7
    meta = phonenumbers.PhoneMetadata.metadata_for_region(country)
    trunk = (meta.national_prefix if meta is not None else None) or ""
    return {"country": country, "callingCode": str(code), "trunkPrefix": trunk}
