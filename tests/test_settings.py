"""Settings refuse values that cannot work, with the variable's name in the message."""

from __future__ import annotations

import pytest

from perezvon.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PEREZVON_DATABASE_URL", "mysql://x/y"),
        ("PEREZVON_IP_RATE_LIMIT", "-1"),
        ("PEREZVON_IP_RATE_LIMIT", "five"),
        ("PEREZVON_DIALER", "skype"),
        ("PEREZVON_RUN_WORKER", "maybe"),
        ("PEREZVON_SIP_RTP_PORTS", "20000-10000"),
        ("PEREZVON_SIP_RTP_PORTS", "80-90"),
        ("PEREZVON_WORKER_CONCURRENCY", "0"),
        ("PEREZVON_LOG_FORMAT", "xml"),
        ("PEREZVON_LOG_LEVEL", "loud"),
        ("PEREZVON_METRICS_PORT", "70000"),
        ("PEREZVON_METRICS_PORT", "ninety"),
    ],
)
def test_a_bad_value_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


def test_defaults_are_the_embedded_demo(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for name in ("PEREZVON_DATABASE_URL", "PEREZVON_DIALER", "PEREZVON_SIP_TRUNK", "PEREZVON_IP_RATE_LIMIT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.database_url == f"sqlite:///{tmp_path / 'perezvon.db'}"
    assert settings.dialer == "simulated"
    assert settings.ip_rate_limit == 5
    assert settings.run_worker is True


def test_a_trunk_selects_the_sip_dialer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PEREZVON_DIALER", raising=False)
    monkeypatch.setenv("PEREZVON_SIP_TRUNK", "udp:pbx.example:5060")
    monkeypatch.setenv("PEREZVON_SIP_RTP_PORTS", "10000-10999")
    settings = load_settings()
    assert settings.dialer == "sip"
    assert settings.sip_rtp_ports == (10000, 10999)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PEREZVON_SIP_PUBLIC_ADDRESS", "203.0.113.7:5060"),
        ("PEREZVON_SIP_CALLER_ID", "name"),
        ("PEREZVON_SIP_CALLER_DISPLAY", "Callback {phone}"),
        ("PEREZVON_SIP_ASSERT_IDENTITY", "sometimes"),
        ("PEREZVON_SIP_SRTP", "dtls"),
        ("PEREZVON_SIP_TLS_CA_FILE", "/nonexistent/ca.pem"),
    ],
)
def test_a_bad_sip_value_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


def test_sip_network_settings(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    for name, value in {
        "PEREZVON_SIP_PUBLIC_ADDRESS": "203.0.113.7",
        "PEREZVON_SIP_CALLER_ID": "USER",
        "PEREZVON_SIP_ASSERT_IDENTITY": "yes",
        "PEREZVON_SIP_SRTP": "required",
        "PEREZVON_SIP_TLS_CA_FILE": str(ca),
    }.items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    assert (s.sip_public_address, s.sip_caller_id, s.sip_assert_identity) == ("203.0.113.7", "user", True)
    assert (s.sip_srtp, s.sip_tls_verify, s.sip_tls_ca_file) == ("required", True, str(ca))
    assert s.sip_caller_display == "Callback {number}"
