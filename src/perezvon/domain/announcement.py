"""What the operator hears when they pick up (DESIGN §4): the request read out, fields in order.

Pure: text in, text out. The speech synthesiser reads punctuation, so each part ends with one full
stop and values are cleaned of line breaks and trailing stops that would make odd pauses.
"""

from __future__ import annotations

import re
from typing import Literal

Language = Literal["ru", "en"]

_PHRASES = {
    "en": {"intro": "Callback request from the site", "unit": "Department"},
    "ru": {"intro": "Заявка на обратный звонок с сайта", "unit": "Отдел"},
}
_SPACE = re.compile(r"\s+")


def _clean(text: str) -> str:
    """One line, no trailing stops or colons (we add our own), no surrounding spaces."""
    return _SPACE.sub(" ", text).strip().rstrip(".;:,!? ").strip()


def announcement_text(fields: list[tuple[str, str]], *, language: Language = "ru",
                      site_name: str | None = None, unit_name: str | None = None) -> str:
    """E.g. "Callback request from the site. Name: Ivan. Last name: Petrov."

    A field with an empty name reads just its value; an empty value is skipped entirely.
    """
    if language not in _PHRASES:
        raise ValueError(f"language must be 'ru' or 'en', got {language!r}")
    phrases = _PHRASES[language]
    site = _clean(site_name or "")
    parts = [f"{phrases['intro']} {site}" if site else phrases["intro"]]
    unit = _clean(unit_name or "")
    if unit:
        parts.append(f"{phrases['unit']}: {unit}")
    for name, value in fields:
        name, value = _clean(name), _clean(value)
        if not value:
            continue
        parts.append(f"{name}: {value}" if name else value)
    return " ".join(f"{part}." for part in parts)
