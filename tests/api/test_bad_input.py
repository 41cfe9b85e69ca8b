"""Bad input (DESIGN §7): no 5xx for any input, ASCII digits only, 64 KB bodies, storable text, an honest OpenAPI."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from api.helpers import CREATE, create

TWIN = "/widget-service/v1/api/widget-request/user-form/create"
ARABIC_INDIC = "٧٩٠٠١٢٣٤٥٦٧"  # 79001234567 in Arabic-Indic digits
FULLWIDTH = "７９００１２３４５６７"


def _deep(levels: int) -> bytes:
    return b'{"a":' + b"[" * levels + b"]" * levels + b"}"


async def _chunks(total: int) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * 8192
        sent += 8192


@pytest.mark.parametrize("phone", [ARABIC_INDIC, FULLWIDTH, "7900123456²"])
async def test_a_phone_in_other_digits_is_a_validation_error(app_client, admin, phone: str) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    response = await create(app_client, site["siteKey"], phone=phone)
    assert response.status_code == 400
    assert [f["name"] for f in response.json()["details"]["fields"]] == ["phone"]
    twin = await app_client.post(
        TWIN, json={"routeKey": "my_form_1", "phone": phone}, headers={"Access-Token": _token()}
    )
    assert twin.status_code == 400 and twin.json()["data"]["apiErrorData"]["errorCode"] == 10013
    blacklisted = await app_client.post(
        f"/api/admin/v1/sites/{site['id']}/blacklist", json={"phone": phone}, headers=admin.headers
    )
    assert blacklisted.status_code == 400


def _token() -> str:
    from support import ADMIN_TOKEN

    return ADMIN_TOKEN


async def test_odd_digits_in_ids_are_not_numbers_and_not_crashes(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    twin = await app_client.post(
        TWIN,
        json={"routeKey": "my_form_1", "phone": "79001234567"},
        headers={"Access-Token": _token(), "SiteId": "²".encode("latin-1")},
    )
    assert twin.status_code == 400 and twin.json()["data"]["apiErrorData"]["errorCode"] == 10003
    for session_id in ("²", "٣", 2**70, -1, True):  # not a session: dropped like an unknown one
        response = await create(app_client, site["siteKey"], sessionId=session_id, phone="79001234561")
        assert response.status_code in (200, 429), response.text
    for path in (
        "/sites/99999999999999999999999",
        "/sites/²",
        "/requests/18446744073709551616",
        "/requests?siteId=99999999999999999999",
        "/requests?offset=99999999999999999999",
    ):
        response = await app_client.get(f"/api/admin/v1{path}", headers=admin.headers)
        assert response.status_code in (400, 404), path
        assert response.json()["type"] in ("validation_error", "not_found")
    response = await app_client.patch(
        f"/api/admin/v1/sites/{site['id']}", json={"minutesBalance": 2**64}, headers=admin.headers
    )
    assert response.status_code == 400


async def test_json_nested_thousands_deep_is_refused(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    for levels in (100, 30_000):  # 30 000 levels: past the recursion limit, under the 64 KB cap
        public = await app_client.post(CREATE, content=_deep(levels))
        assert public.status_code == 400 and public.json()["type"] == "validation_error"
        twin = await app_client.post(TWIN, content=_deep(levels), headers={"Access-Token": _token()})
        assert twin.status_code == 400 and "apiErrorData" in twin.json()["data"]
        made = await app_client.post(
            "/api/admin/v1/sites", content=_deep(levels), headers={**admin.headers, "Content-Type": "application/json"}
        )
        assert made.status_code == 400 and made.json()["type"] == "validation_error"


@pytest.mark.parametrize("text", ["\\ud800", "\\udfff tail", "nul\\u0000", "bell\\u0007"])
async def test_unstorable_text_is_refused_and_the_journal_still_reads(app_client, admin, text: str) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    body = '{"site":"%s","routeKey":"my_form_1","phone":"79001234567","fields":[{"name":"Name","value":"%s"}]}'
    response = await app_client.post(CREATE, content=(body % (site["siteKey"], text)).encode())
    assert response.status_code == 400
    assert response.json()["details"]["fields"][0]["name"] == "fields[0].value"
    twin_body = '{"routeKey":"my_form_1","phone":"79001234567","tags":["TEXT"]}'.replace("TEXT", text)
    twin = await app_client.post(TWIN, content=twin_body.encode(), headers={"Access-Token": _token()})
    assert twin.status_code == 400 and twin.json()["data"]["apiErrorData"]["errorCode"] == 10007
    renamed = await app_client.patch(
        f"/api/admin/v1/sites/{site['id']}",
        content='{"name":"TEXT"}'.replace("TEXT", text).encode(),
        headers={**admin.headers, "Content-Type": "application/json"},
    )
    assert renamed.status_code == 400 and renamed.json()["type"] == "validation_error"
    searched = await app_client.get("/api/admin/v1/requests?q=%00", headers=admin.headers)
    assert searched.status_code == 400
    # Text with a valid pair of escapes (an emoji), tabs and line breaks is fine, and reads back.
    ok = body % (site["siteKey"], "\\ud83d\\ude00 line\\nbreak\\ttab")
    accepted = await app_client.post(CREATE, content=ok.encode())
    assert accepted.status_code == 200
    journal = await app_client.get("/api/admin/v1/requests", headers=admin.headers)
    assert journal.status_code == 200 and journal.json()["items"][0]["fields"][0]["value"].startswith("😀")


async def test_bodies_over_64_kb_get_413_in_each_endpoints_shape_however_framed(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    big = b'{"site":"' + site["siteKey"].encode() + b'","pad":"' + b"x" * 70_000 + b'"}'
    for framing in ("length", "chunked"):

        def content(data: bytes = big, framing: str = framing):  # type: ignore[no-untyped-def]
            return data if framing == "length" else _chunks(70_000)

        public = await app_client.post(CREATE, content=content())
        assert public.status_code == 413 and public.json()["type"] == "validation_error", framing
        twin = await app_client.post(TWIN, content=content(), headers={"Access-Token": _token()})
        assert twin.status_code == 413 and twin.json()["data"]["apiErrorData"]["errorCode"] == 10007, framing
        made = await app_client.post(
            "/api/admin/v1/sites", content=content(), headers={**admin.headers, "Content-Type": "application/json"}
        )
        assert made.status_code == 413 and made.json()["type"] == "validation_error", framing
    exactly = b'{"name":"x","pad":"' + b" " * (65_536 - 21) + b'"}'
    assert len(exactly) == 65_536
    at_the_cap = await app_client.post(
        "/api/admin/v1/sites", content=exactly, headers={**admin.headers, "Content-Type": "application/json"}
    )
    assert at_the_cap.status_code == 400  # read in full: refused for its unknown key, not its size


async def test_the_openapi_document_describes_every_json_endpoint(app_client) -> None:  # type: ignore[no-untyped-def]
    document = (await app_client.get("/api/openapi.json")).json()
    paths = document["paths"]
    for path in (
        "/api/widget/v1/route-key-data",
        "/api/widget/v1/requests",
        "/api/widget/v1/session",
        TWIN,
        "/api/admin/v1/sites",
        "/api/admin/v1/sites/{site_id}/ledger",
        "/api/admin/v1/sites/{site_id}/minutes",
        "/api/admin/v1/requests/{request_id}",
    ):
        assert path in paths, path
    for path, item in paths.items():
        for method, operation in item.items():
            assert "500" not in operation["responses"], (method, path)
            assert any(code.startswith("4") for code in operation["responses"]), (method, path)


async def test_the_docs_page_loads_nothing_from_another_origin(app_client) -> None:  # type: ignore[no-untyped-def]
    page = await app_client.get("/api/docs")
    assert page.status_code == 200
    references = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert references and all(ref.startswith("/") and not ref.startswith("//") for ref in references), references
    assert "https://" not in page.text and "http://" not in page.text
    for ref in references:
        served = await app_client.get(ref)
        assert served.status_code == 200 and len(served.content) > 1000, ref


async def test_times_that_overflow_once_in_utc_are_validation_errors(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    made = await create(app_client, site["siteKey"])
    request_id = made.json()["callbackRequestId"]
    for at in ("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"):  # found by schemathesis: 500s
        moved = await app_client.post(
            f"/api/admin/v1/requests/{request_id}/reschedule", json={"at": at}, headers=admin.headers
        )
        assert moved.status_code == 400 and moved.json()["details"]["fields"][0]["name"] == "at", at
        listed = await app_client.get("/api/admin/v1/requests", params={"dateFrom": at}, headers=admin.headers)
        assert listed.status_code == 400, at
