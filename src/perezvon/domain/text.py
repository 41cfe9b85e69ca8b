"""Text we agree to store: no lone surrogates, no control characters but tab and line breaks.

A lone surrogate (JSON ``"\\ud800"``) cannot be encoded as UTF-8, so a stored one makes every later
read of its row fail; NUL cannot be stored in a PostgreSQL text column at all. Such input is refused
where it arrives, naming the field, rather than cleaned up silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

# C0 controls except \t \n \r, DEL, and UTF-16 surrogates (only a lone one survives JSON decoding).
_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
MAX_DEPTH = 32  # no JSON body of ours nests deeper than 4; this leaves room and stops recursion bombs


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None."""
    found = _BAD.search(text)
    if found is None:
        return None
    code = ord(found.group())
    kind = "a lone UTF-16 surrogate" if 0xD800 <= code <= 0xDFFF else "a control character"
    return f"contains {kind} (U+{code:04X}), which is not accepted"


def bad_strings(value: Any, where: str = "body", depth: int = 0) -> Iterator[tuple[str, str]]:
    """(field path, problem) for each unstorable string in a decoded JSON value, keys included."""
    if depth > MAX_DEPTH:
        yield where, f"nests deeper than {MAX_DEPTH} levels"
        return
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            yield where, problem
    elif isinstance(value, dict):
        for key, item in value.items():
            name = key if where == "body" else f"{where}.{key}"
            problem = text_problem(key)
            if problem:
                yield (where, f"has a key that {problem}")
                continue
            yield from bad_strings(item, name, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from bad_strings(item, f"{where}[{index}]", depth + 1)
