"""ASCII digits only: what the API reads as a number or a phone (DESIGN §7 "Bad input").

Python's ``str.isdigit`` and regex ``\\d`` accept any script's digits (Arabic-Indic ``٧``, fullwidth ``７``,
superscript ``²``), and ``int("²")`` then raises: a value with such digits is treated like any non-number.
"""

from __future__ import annotations

import re

ASCII_DIGITS = re.compile(r"[0-9]+")
# Ids are 64-bit signed integers in both databases; a larger one can name no row.
MAX_ID = 2**63 - 1


def is_ascii_digits(text: str) -> bool:
    """True for a non-empty string of 0-9 only."""
    return ASCII_DIGITS.fullmatch(text) is not None


def parse_id(value: object) -> int | None:
    """A positive 64-bit id from a JSON integer or a string of ASCII digits; anything else → None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not is_ascii_digits(text) or len(text) > 19:
            return None
        value = int(text)
    if not isinstance(value, int) or not 0 < value <= MAX_ID:
        return None
    return value


def has_foreign_digits(text: str) -> bool:
    """True when ``text`` holds a digit that is not 0-9 (a number typed in another script)."""
    return any(ch.isdigit() and not "0" <= ch <= "9" for ch in text)
