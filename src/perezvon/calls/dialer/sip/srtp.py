"""SDES-SRTP (RFC 4568 keys in the SDP, RFC 3711 packets): one leg's keys and its two libsrtp sessions.

We offer one suite, AES_CM_128_HMAC_SHA1_80 (the one every SRTP phone and trunk supports), with a
fresh key per leg. Once the answer gives the far end's key, media to it is protected with ours and
media from it checked and decrypted with theirs (libsrtp, through pylibsrtp).
"""

from __future__ import annotations

import base64
import secrets

import pylibsrtp

SUITE = "AES_CM_128_HMAC_SHA1_80"
KEY_LEN = 30  # 16-byte master key + 14-byte salt


class SrtpError(ValueError):
    """A crypto attribute we cannot use, or a packet that failed authentication."""


def new_key() -> bytes:
    return secrets.token_bytes(KEY_LEN)


def crypto_attribute(key: bytes, tag: int = 1) -> str:
    """The value of our `a=crypto:` line."""
    return f"{tag} {SUITE} inline:{base64.b64encode(key).decode()}"


def parse_crypto(values: list[str]) -> tuple[int, bytes] | None:
    """(tag, key) of the first `a=crypto` value in our suite; None if there is none we can use."""
    for value in values:
        parts = value.split()
        if len(parts) < 3 or parts[1] != SUITE or not parts[0].isdigit():
            continue
        params = parts[2].split(";")[0]  # "inline:KEY|2^20|1:4": lifetime and MKI we do not use
        if not params.startswith("inline:"):
            continue
        key_text = params[len("inline:") :].split("|")[0]
        if "|" in params[len("inline:") :] and params.count("|") >= 2:
            continue  # an MKI: libsrtp's sessions here carry none
        try:
            key = base64.b64decode(key_text, validate=True)
        except ValueError:
            continue
        if len(key) == KEY_LEN:
            return int(parts[0]), key
    return None


class SrtpContext:
    """What one leg protects and unprotects with: our key outbound, the far end's inbound."""

    def __init__(self, local_key: bytes, remote_key: bytes) -> None:
        self.local_key = local_key
        self.remote_key = remote_key
        self._out = pylibsrtp.Session(_policy(local_key, pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
        self._in = pylibsrtp.Session(_policy(remote_key, pylibsrtp.Policy.SSRC_ANY_INBOUND))

    def rekeyed(self, remote_key: bytes) -> SrtpContext:
        """After a renegotiation: the same outbound stream, the far end's new key if it changed."""
        if remote_key == self.remote_key:
            return self
        other = SrtpContext.__new__(SrtpContext)
        other.local_key, other.remote_key, other._out = self.local_key, remote_key, self._out
        other._in = pylibsrtp.Session(_policy(remote_key, pylibsrtp.Policy.SSRC_ANY_INBOUND))
        return other

    def protect(self, packet: bytes) -> bytes:
        return self._out.protect(packet)

    def unprotect(self, packet: bytes) -> bytes:
        try:
            return self._in.unprotect(packet)
        except pylibsrtp.Error as exc:  # forged, replayed or garbled
            raise SrtpError(str(exc)) from None


def _policy(key: bytes, ssrc_type: int) -> pylibsrtp.Policy:
    return pylibsrtp.Policy(key=key, ssrc_type=ssrc_type, srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80)
