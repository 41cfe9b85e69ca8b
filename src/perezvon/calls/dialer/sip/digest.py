"""HTTP digest authentication for SIP (RFC 2617, RFC 7616 SHA-256, RFC 8760), qop=auth or none.

A trunk answers our INVITE with 401 (WWW-Authenticate) or 407 (Proxy-Authenticate); we answer the
challenge in Authorization or Proxy-Authorization respectively.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from .message import SipParseError

_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


@dataclass(frozen=True)
class Challenge:
    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False

    @property
    def supported(self) -> bool:
        qop_ok = not self.qop or "auth" in self.qop
        return self.algorithm.upper() in _HASHES and qop_ok


def _parse_auth_params(text: str) -> dict[str, str]:
    """``realm="a", nonce="b,c", qop="auth,auth-int"`` → dict; commas inside quotes are kept."""
    params: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " ,\t":
            i += 1
        eq = text.find("=", i)
        if eq < 0:
            break
        name = text[i:eq].strip().lower()
        i = eq + 1
        while i < n and text[i] == " ":
            i += 1
        if i < n and text[i] == '"':
            j = i + 1
            buf = []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(text[j])
                j += 1
            if j >= n:
                raise SipParseError("unterminated quoted string in challenge")
            value = "".join(buf)
            i = j + 1
        else:
            j = text.find(",", i)
            j = n if j < 0 else j
            value = text[i:j].strip()
            i = j
        params[name] = value
    return params


def parse_challenge(header: str) -> Challenge:
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        raise SipParseError(f"not a Digest challenge: {scheme[:20]!r}")
    params = _parse_auth_params(rest)
    if "realm" not in params or "nonce" not in params:
        raise SipParseError("challenge without realm or nonce")
    qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
    return Challenge(
        realm=params["realm"],
        nonce=params["nonce"],
        algorithm=params.get("algorithm", "MD5").upper(),
        qop=qop,
        opaque=params.get("opaque"),
        stale=params.get("stale", "").lower() == "true",
    )


def _h(algorithm: str, text: str) -> str:
    return _HASHES[algorithm](text.encode()).hexdigest()


def compute_response(challenge: Challenge, *, method: str, uri: str, username: str, password: str,
                     nc: int = 1, cnonce: str = "") -> str:
    alg = challenge.algorithm.upper()
    ha1 = _h(alg, f"{username}:{challenge.realm}:{password}")
    ha2 = _h(alg, f"{method}:{uri}")
    if "auth" in challenge.qop:
        return _h(alg, f"{ha1}:{challenge.nonce}:{nc:08x}:{cnonce}:auth:{ha2}")
    return _h(alg, f"{ha1}:{challenge.nonce}:{ha2}")


def authorization(challenge: Challenge, *, method: str, uri: str, username: str, password: str,
                  nc: int = 1, cnonce: str | None = None) -> str:
    """The Authorization / Proxy-Authorization header value answering `challenge`."""
    if not challenge.supported:
        raise ValueError(f"unsupported digest algorithm {challenge.algorithm} / qop {challenge.qop}")
    use_qop = "auth" in challenge.qop
    cnonce = cnonce if cnonce is not None else secrets.token_hex(8)
    response = compute_response(challenge, method=method, uri=uri, username=username, password=password,
                                nc=nc, cnonce=cnonce)
    parts = [
        f'username="{username}"',
        f'realm="{challenge.realm}"',
        f'nonce="{challenge.nonce}"',
        f'uri="{uri}"',
        f'response="{response}"',
        f"algorithm={challenge.algorithm}",
    ]
    if challenge.opaque is not None:
        parts.append(f'opaque="{challenge.opaque}"')
    if use_qop:
        parts += ["qop=auth", f"nc={nc:08x}", f'cnonce="{cnonce}"']
    return "Digest " + ", ".join(parts)


def verify(header: str, *, method: str, password: str) -> bool:
    """Check an Authorization header (used by tests standing in for a trunk)."""
    _, _, rest = header.strip().partition(" ")
    p = _parse_auth_params(rest)
    challenge = Challenge(p["realm"], p["nonce"], p.get("algorithm", "MD5"),
                          (p["qop"],) if "qop" in p else (), p.get("opaque"))
    expected = compute_response(challenge, method=method, uri=p["uri"], username=p["username"],
                                password=password, nc=int(p.get("nc", "1"), 16), cnonce=p.get("cnonce", ""))
    return secrets.compare_digest(expected, p.get("response", ""))
