"""Settings, read once from the environment (every one documented in docs/deployment.md)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path


class SettingsError(ValueError):
    """A setting holds a value we refuse to start with."""


def _env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def _env_int(name: str, default: int) -> int:
    raw = _env_str(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from exc


def _env_float(name: str, default: float) -> float:
    raw = _env_str(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from exc


def _env_bool(name: str, default: bool) -> bool:
    raw = _env_str(name).lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _env_list(name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in _env_str(name).split(",") if part.strip())


def _env_port_range(name: str) -> tuple[int, int] | None:
    """'10000-20000' → (10000, 20000); empty → None (any free port)."""
    raw = _env_str(name)
    if not raw:
        return None
    low, _, high = raw.partition("-")
    if not (low.strip().isdigit() and high.strip().isdigit()) or not 1024 <= int(low) < int(high) <= 65535:
        raise SettingsError(f"{name} must look like 10000-20000 (ports 1024..65535, low < high), got {raw!r}")
    return int(low), int(high)


def _env_choice(name: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (the first is the default)."""
    raw = _env_str(name, choices[0]).lower()
    if raw not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _env_ip(name: str) -> str:
    """An IP address without a port (e.g. a NAT's public address); empty stays empty."""
    raw = _env_str(name)
    if raw:
        try:
            ipaddress.ip_address(raw)
        except ValueError:
            raise SettingsError(f"{name} must be an IP address without a port, got {raw!r}") from None
    return raw


def _env_caller_display(name: str) -> str:
    raw = _env_str(name, "Callback {number}")
    try:
        raw.format(number="79001234567")
    except (KeyError, IndexError, ValueError):
        raise SettingsError(f"{name} may use only {{number}}, got {raw!r}") from None
    return raw


def _env_file(name: str) -> str:
    raw = _env_str(name)
    if raw and not Path(raw).is_file():
        raise SettingsError(f"{name}: no such file {raw!r}")
    return raw


def default_database_url() -> str:
    return f"sqlite:///{Path.cwd() / 'perezvon.db'}"


@dataclass(frozen=True)
class Settings:
    database_url: str = field(default_factory=default_database_url)
    redis_url: str = ""
    # Prefix of every Redis key: processes of one deployment share it; two deployments (or test runs)
    # on one Redis server keep their counts apart with different ones.
    redis_namespace: str = "perezvon"
    admin_token: str = ""
    ip_rate_limit: int = 5
    trusted_proxies: tuple[str, ...] = ()
    public_base_url: str = ""
    dialer: str = "simulated"
    sim_ring_s: float = 1.0
    sim_talk_s: float = 5.0
    sip_trunk: str = ""
    sip_user: str = ""
    sip_password: str = ""
    sip_caller: str = ""
    sip_bind: str = "127.0.0.1:0"
    sip_public_address: str = ""
    sip_caller_id: str = "display"
    sip_caller_display: str = "Callback {number}"
    sip_assert_identity: bool = False
    sip_srtp: str = "off"
    sip_tls_verify: bool = True
    sip_tls_ca_file: str = ""
    recordings_dir: str = ""
    run_worker: bool = True
    worker_concurrency: int = 50
    worker_lease_s: float = 30.0
    sip_rtp_ports: tuple[int, int] | None = None
    sip_direct_media: bool = False  # the default trunk lets bridged calls' media flow end to end
    log_level: str = "info"
    log_format: str = "text"
    metrics_token: str = ""
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    demo: bool = False
    # Webhook receivers on loopback, private or link-local addresses (refused by default: see outbound.py).
    webhook_allow_private: bool = False

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _operating_settings() -> dict[str, object]:
    """Logs and metrics (docs/deployment.md, "Watching it")."""
    log_format = (_env_str("PEREZVON_LOG_FORMAT") or "text").lower()
    if log_format not in ("text", "json"):
        raise SettingsError(f"PEREZVON_LOG_FORMAT must be text or json, got {log_format!r}")
    log_level = _env_str("PEREZVON_LOG_LEVEL", "info").lower()
    if log_level not in ("debug", "info", "warning", "error", "critical"):
        raise SettingsError(f"PEREZVON_LOG_LEVEL must be debug, info, warning or error, got {log_level!r}")
    metrics_port = _env_int("PEREZVON_METRICS_PORT", 0) or None
    if metrics_port is not None and not 1 <= metrics_port <= 65535:
        raise SettingsError(f"PEREZVON_METRICS_PORT must be a port (1..65535), got {metrics_port}")
    return {
        "log_level": log_level,
        "log_format": log_format,
        "metrics_token": _env_str("PEREZVON_METRICS_TOKEN"),
        "metrics_port": metrics_port,
        "metrics_host": _env_str("PEREZVON_METRICS_HOST", "127.0.0.1"),
    }


def load_settings() -> Settings:
    """Read every PEREZVON_* variable; refuse values that cannot work."""
    database_url = _env_str("PEREZVON_DATABASE_URL") or default_database_url()
    if not database_url.startswith(("sqlite:", "postgresql:", "postgres:", "postgresql+")):
        raise SettingsError(
            "PEREZVON_DATABASE_URL must be sqlite:///ABSOLUTE/PATH or postgresql://…, "
            f"got scheme {database_url.split(':', 1)[0]!r}"
        )
    ip_rate_limit = _env_int("PEREZVON_IP_RATE_LIMIT", 5)
    if ip_rate_limit < 0:
        raise SettingsError("PEREZVON_IP_RATE_LIMIT must be 0 (off) or more")
    sip_trunk = _env_str("PEREZVON_SIP_TRUNK")
    dialer = _env_str("PEREZVON_DIALER") or ("sip" if sip_trunk else "simulated")
    if dialer not in ("sip", "simulated"):
        raise SettingsError(f"PEREZVON_DIALER must be sip or simulated, got {dialer!r}")
    if _env_int("PEREZVON_WORKER_CONCURRENCY", 50) < 1:
        raise SettingsError("PEREZVON_WORKER_CONCURRENCY must be 1 or more (calls at once per worker)")
    if _env_float("PEREZVON_WORKER_LEASE_S", 30.0) < 1:
        raise SettingsError("PEREZVON_WORKER_LEASE_S must be at least 1 second")
    return Settings(
        database_url=database_url,
        redis_url=_env_str("PEREZVON_REDIS_URL"),
        redis_namespace=_env_str("PEREZVON_REDIS_NAMESPACE", "perezvon") or "perezvon",
        admin_token=_env_str("PEREZVON_ADMIN_TOKEN"),
        ip_rate_limit=ip_rate_limit,
        trusted_proxies=_env_list("PEREZVON_TRUSTED_PROXIES"),
        public_base_url=_env_str("PEREZVON_PUBLIC_URL").rstrip("/"),
        dialer=dialer,
        sim_ring_s=_env_float("PEREZVON_SIM_RING_S", 1.0),
        sim_talk_s=_env_float("PEREZVON_SIM_TALK_S", 5.0),
        sip_trunk=sip_trunk,
        sip_user=_env_str("PEREZVON_SIP_USER"),
        sip_password=_env_str("PEREZVON_SIP_PASSWORD"),
        sip_caller=_env_str("PEREZVON_SIP_CALLER"),
        sip_bind=_env_str("PEREZVON_SIP_BIND", "127.0.0.1:0"),
        sip_public_address=_env_ip("PEREZVON_SIP_PUBLIC_ADDRESS"),
        sip_caller_id=_env_choice("PEREZVON_SIP_CALLER_ID", ("display", "user")),
        sip_caller_display=_env_caller_display("PEREZVON_SIP_CALLER_DISPLAY"),
        sip_assert_identity=_env_bool("PEREZVON_SIP_ASSERT_IDENTITY", False),
        sip_srtp=_env_choice("PEREZVON_SIP_SRTP", ("off", "optional", "required")),
        sip_tls_verify=_env_bool("PEREZVON_SIP_TLS_VERIFY", True),
        sip_tls_ca_file=_env_file("PEREZVON_SIP_TLS_CA_FILE"),
        recordings_dir=_env_str("PEREZVON_RECORDINGS_DIR"),
        run_worker=_env_bool("PEREZVON_RUN_WORKER", True),
        worker_concurrency=_env_int("PEREZVON_WORKER_CONCURRENCY", 50),
        worker_lease_s=_env_float("PEREZVON_WORKER_LEASE_S", 30.0),
        sip_rtp_ports=_env_port_range("PEREZVON_SIP_RTP_PORTS"),
        sip_direct_media=_env_bool("PEREZVON_SIP_DIRECT_MEDIA", False),
        **_operating_settings(),
        demo=_env_bool("PEREZVON_DEMO", False),
        webhook_allow_private=_env_bool("PEREZVON_WEBHOOK_ALLOW_PRIVATE", False),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
