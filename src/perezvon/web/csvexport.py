"""The journal as CSV, safe to open in a spreadsheet.

Visitors type the fields, tags and UTM values; a cell such as ``=HYPERLINK(...)`` or ``+cmd|...`` would
run as a formula in Excel or LibreOffice. Such cells get a leading apostrophe (OWASP "CSV injection").
"""

from __future__ import annotations

import csv
import io
from typing import Any

from ..shapes.resources import UTM_KEYS, iso

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

COLUMNS = [
    "id",
    "createdAt",
    "site",
    "routeKey",
    "phone",
    "status",
    "fields",
    "tags",
    "unit",
    "scheduleTime",
    "dueAt",
    "attempts",
    "lastOutcome",
    "billedSeconds",
    "source",
    "callUrl",
    *UTM_KEYS,
    "sessionId",
]


def neutralize(value: Any) -> str:
    """One cell: text that a spreadsheet could read as a formula is quoted with a leading apostrophe."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def request_row(row: dict[str, Any], attempts: list[dict[str, Any]], site_name: str, unit_name: str) -> list[str]:
    fields = " | ".join(f"{f.get('name', '')}: {f.get('value', '')}" for f in row["fields"])
    utm = row.get("utm") or {}
    values: list[Any] = [
        row["id"],
        iso(row["created_at"]),
        site_name,
        row["route_key"],
        row["phone"],
        row["status"],
        fields,
        ", ".join(str(t) for t in row["tags"]),
        unit_name,
        row["schedule_time"],
        iso(row["due_at"]),
        len(attempts),
        attempts[-1]["outcome"] if attempts else "",
        sum(a["billed_seconds"] or 0 for a in attempts),
        row["source"],
        row.get("call_url") or "",
        *[utm.get(key, "") for key in UTM_KEYS],
        row["session_id"] or "",
    ]
    return [neutralize(v) for v in values]


class Writer:
    """CSV text written row by row and handed out in chunks, so an export streams in constant memory."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\r\n")

    def header(self) -> str:
        """The BOM (so spreadsheets read the UTF-8, Cyrillic too, right) and the column names."""
        self._buffer.write("\ufeff")
        self._csv.writerow(COLUMNS)
        return self.flush()

    def row(self, cells: list[str]) -> None:
        self._csv.writerow(cells)

    def flush(self) -> str:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text
