"""Webhooks never reach inside addresses (DESIGN §7): refused on save (422) and on send, the IP pinned."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import httpx
import pytest

from perezvon import outbound
from perezvon.calls.webhooks import DeliveryError, Outbound
from perezvon.outbound import UnsafeURL, check_url, is_public

INSIDE = [
    "http://127.0.0.1:6379/",
    "http://localhost/x",
    "http://169.254.169.254/latest/meta-data",
    "http://10.0.0.5/",
    "http://192.168.1.1/",
    "http://0.0.0.0/",
    "http://[::1]/",
    "http://[fe80::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://100.64.0.1/",
    "https://[fd00::1]:8443/h",
]


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.0.1", False),
        ("169.254.169.254", False),
        ("0.0.0.0", False),
        ("::", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:10.0.0.1", False),
        ("100.64.0.1", False),
        ("224.0.0.1", False),
    ],
)
def test_only_public_unicast_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize("url", INSIDE)
async def test_inside_addresses_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(UnsafeURL, match="non-public") as caught:
        await check_url(url)
    assert "127.0.0.1" not in str(caught.value) or "127.0.0.1" in url  # the address found is never named
    assert (await check_url(url, allow_private=True)).url == url


async def test_the_connection_goes_to_the_address_that_was_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = [[ipaddress.ip_address("8.8.4.4")], [ipaddress.ip_address("127.0.0.1")]]  # then a rebinding answer

    async def resolve(hostname: str, port: int):  # type: ignore[no-untyped-def]
        return answers.pop(0)

    monkeypatch.setattr(outbound, "resolve", resolve)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    sender = Outbound(timeout=1)
    await sender._client.aclose()
    sender._client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    try:
        assert await sender.post("https://hooks.example.com:8443/in?x=1", b"{}", {"X-Test": "1"}) == 204
    finally:
        await sender.close()
    [request] = seen
    assert request.url.host == "8.8.4.4" and request.url.port == 8443 and request.url.path == "/in"
    assert request.headers["host"] == "hooks.example.com:8443"  # the name stays for the receiver and TLS
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    assert len(answers) == 1  # resolved once: a second answer cannot redirect the connection


async def test_the_sender_refuses_an_inside_address_for_good() -> None:
    sender = Outbound(timeout=1)
    try:
        with pytest.raises(DeliveryError) as caught:
            await sender.post("http://169.254.169.254/latest", b"{}", {})
    finally:
        await sender.close()
    assert caught.value.permanent and caught.value.status_code is None
    assert "non-public" in str(caught.value)


async def test_saving_an_inside_webhook_url_is_a_422(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site = await admin.post("/sites", {"name": "Hooks"})
    for url in ("http://127.0.0.1:8080/hook", "http://169.254.169.254/latest/meta-data"):
        response = await app_client.patch(
            f"/api/admin/v1/sites/{site['id']}", json={"webhookUrls": [url]}, headers=admin.headers
        )
        assert response.status_code == 422, url
        assert response.json()["type"] == "validation_error"
        assert response.json()["details"]["fields"][0]["name"] == "webhookUrls[0]"
        made = await app_client.post(
            "/api/admin/v1/sites", json={"name": "New", "webhookUrls": [url]}, headers=admin.headers
        )
        assert made.status_code == 422
    assert (await admin.get(f"/sites/{site['id']}"))["webhookUrls"] == []
    app_client.app.state.settings = replace(app_client.app.state.settings, webhook_allow_private=True)
    allowed = await admin.patch(f"/sites/{site['id']}", {"webhookUrls": ["http://127.0.0.1:8080/hook"]})
    assert allowed["webhookUrls"] == ["http://127.0.0.1:8080/hook"]


async def test_a_url_python_cannot_split_is_refused_not_a_crash(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnsafeURL, match="not a URL"):
        await check_url("http://[", allow_private=True)  # found by schemathesis: a 500 on save
    site = await admin.post("/sites", {"name": "Hooks"})
    response = await app_client.patch(
        f"/api/admin/v1/sites/{site['id']}", json={"webhookUrls": ["http://[::1"]}, headers=admin.headers
    )
    assert response.status_code == 422
