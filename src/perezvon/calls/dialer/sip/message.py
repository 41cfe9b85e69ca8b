"""SIP messages (RFC 3261 §7, §20, §25): parse bytes into requests/responses and serialise them back.

Sans-I/O: nothing here touches a socket. Every defect in the input — bad UTF-8, a truncated body, a
start line that is not SIP — raises the one `SipParseError`; the transport catches it, logs and drops.
Header names and values are kept as received (so a parsed message serialises back to the same bytes),
lookups are case-insensitive and understand the compact forms (``v`` for Via and so on).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

SIP_VERSION = "SIP/2.0"

# RFC 3261 §7.3.3 compact forms.
COMPACT = {
    "v": "via",
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
    "e": "content-encoding",
    "k": "supported",
    "s": "subject",
    "o": "event",
    "u": "allow-events",
    "r": "refer-to",
    "b": "referred-by",
    "x": "session-expires",
}

# Values are checked only as much as our own use needs; anything stricter would refuse real peers.
_TOKEN = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")
_MAX_MESSAGE = 65535  # larger than any UDP datagram; TCP framing refuses more


class SipParseError(ValueError):
    """The bytes are not a SIP message we can use; the text names the defect."""


def canonical(name: str) -> str:
    low = name.strip().lower()
    return COMPACT.get(low, low)


@dataclass
class Headers:
    """Ordered (name, value) pairs; lookups ignore case and compact forms, order is kept."""

    items: list[tuple[str, str]] = field(default_factory=list)

    def get(self, name: str, default: str | None = None) -> str | None:
        key = canonical(name)
        for k, v in self.items:
            if canonical(k) == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value, with comma-joined values of list headers (Via, Route, …) split apart."""
        key = canonical(name)
        out: list[str] = []
        for k, v in self.items:
            if canonical(k) == key:
                out.extend(split_header_list(v) if key in _LIST_HEADERS else [v])
        return out

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def add(self, name: str, value: str) -> None:
        self.items.append((name, value))

    def set(self, name: str, value: str) -> None:
        """Replace the first occurrence (keeping its position and spelling), drop the rest."""
        key = canonical(name)
        out: list[tuple[str, str]] = []
        done = False
        for k, v in self.items:
            if canonical(k) == key:
                if not done:
                    out.append((k, value))
                    done = True
                continue
            out.append((k, v))
        if not done:
            out.append((name, value))
        self.items = out

    def remove(self, name: str) -> None:
        key = canonical(name)
        self.items = [(k, v) for k, v in self.items if canonical(k) != key]

    def copy(self) -> Headers:
        return Headers(list(self.items))

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.items)


_LIST_HEADERS = {"via", "route", "record-route", "contact", "allow", "supported", "require"}


def split_header_list(value: str) -> list[str]:
    """Split a comma-separated header value, not inside quotes or <…>."""
    parts: list[str] = []
    buf: list[str] = []
    quoted = False
    angle = 0
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            angle += 1
        elif not quoted and ch == ">":
            angle = max(0, angle - 1)
        if ch == "," and not quoted and angle == 0:
            parts.append("".join(buf).strip())
            buf = []
        else:
            buf.append(ch)
    tail = "".join(buf).strip()
    if tail:
        parts.append(tail)
    return [p for p in parts if p]


@dataclass
class SipMessage:
    headers: Headers
    body: bytes

    # Common header accessors: raise SipParseError when a header the caller relies on is missing,
    # so a peer's omission is handled like any other malformed input.
    def need(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise SipParseError(f"missing {name} header")
        return value

    @property
    def call_id(self) -> str:
        return self.need("Call-ID").strip()

    @property
    def cseq(self) -> tuple[int, str]:
        raw = self.need("CSeq").split()
        if len(raw) != 2 or not raw[0].isdigit():
            raise SipParseError(f"bad CSeq {self.need('CSeq')!r}")
        return int(raw[0]), raw[1].upper()

    @property
    def top_via(self) -> Via:
        vias = self.headers.get_all("Via")
        if not vias:
            raise SipParseError("missing Via header")
        return Via.parse(vias[0])

    @property
    def from_addr(self) -> NameAddr:
        return NameAddr.parse(self.need("From"))

    @property
    def to_addr(self) -> NameAddr:
        return NameAddr.parse(self.need("To"))

    def start_line(self) -> str:
        raise NotImplementedError

    def encode(self) -> bytes:
        """Serialise; Content-Length always tells the truth about the body."""
        headers = self.headers.copy()
        headers.set("Content-Length", str(len(self.body)))
        lines = [self.start_line()] + [f"{k}: {v}" for k, v in headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body

    def __bytes__(self) -> bytes:
        return self.encode()


@dataclass
class SipRequest(SipMessage):
    method: str = ""
    uri: str = ""

    def __init__(self, method: str, uri: str, headers: Headers | None = None, body: bytes = b"") -> None:
        super().__init__(headers or Headers(), body)
        self.method = method
        self.uri = uri

    def start_line(self) -> str:
        return f"{self.method} {self.uri} {SIP_VERSION}"


@dataclass
class SipResponse(SipMessage):
    status: int = 0
    reason: str = ""

    def __init__(self, status: int, reason: str, headers: Headers | None = None, body: bytes = b"") -> None:
        super().__init__(headers or Headers(), body)
        self.status = status
        self.reason = reason

    def start_line(self) -> str:
        return f"{SIP_VERSION} {self.status} {self.reason}"


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    for sep in (b"\r\n\r\n", b"\n\n"):
        idx = data.find(sep)
        if idx >= 0:
            return data[:idx], data[idx + len(sep) :]
    raise SipParseError("no blank line after the headers (truncated message?)")


def parse_message(data: bytes, *, stream: bool = False) -> SipRequest | SipResponse:
    """Parse one whole message.

    For a datagram (`stream=False`) a body longer than Content-Length is cut to it (RFC 3261 §18.3),
    a shorter one is an error. Leading CRLFs (keep-alives) are skipped.
    """
    if len(data) > _MAX_MESSAGE:
        raise SipParseError(f"message of {len(data)} bytes is too large")
    data = data.lstrip(b"\r\n")
    if not data:
        raise SipParseError("empty message")
    head_bytes, body = _split_head(data)
    try:
        head = head_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError(f"headers are not UTF-8 at byte {exc.start}") from None
    raw_lines = re.split(r"\r?\n", head)
    start = raw_lines[0]
    headers = Headers()
    for raw in raw_lines[1:]:
        if raw[:1] in (" ", "\t"):  # a folded continuation line (§7.3.1)
            if not headers.items:
                raise SipParseError("continuation line before any header")
            name, value = headers.items[-1]
            headers.items[-1] = (name, f"{value} {raw.strip()}")
            continue
        name, colon, value = raw.partition(":")
        name = name.strip()
        if not colon or not name or not _TOKEN.match(name):
            raise SipParseError(f"bad header line {raw[:60]!r}")
        headers.add(name, value.strip())
    length_raw = headers.get("Content-Length")
    if length_raw is not None:
        if not length_raw.isdigit():
            raise SipParseError(f"bad Content-Length {length_raw!r}")
        length = int(length_raw)
        if len(body) < length:
            raise SipParseError(f"body has {len(body)} bytes, Content-Length says {length}")
        body = body[:length]
    elif stream:
        raise SipParseError("no Content-Length on a stream transport")
    msg = _parse_start(start, headers, body)
    # Every message we act upon needs these; refusing here keeps later code free of None checks.
    for name in ("Via", "CSeq", "Call-ID", "From", "To"):
        msg.need(name)
    msg.cseq  # noqa: B018 - validates the CSeq shape
    return msg


def _parse_start(start: str, headers: Headers, body: bytes) -> SipRequest | SipResponse:
    parts = start.split(" ", 2)
    if len(parts) != 3:
        raise SipParseError(f"bad start line {start[:60]!r}")
    if parts[0] == SIP_VERSION:
        code = parts[1]
        if len(code) != 3 or not code.isdigit() or not 100 <= int(code) <= 699:
            raise SipParseError(f"bad status code {code[:10]!r}")
        return SipResponse(int(code), parts[2], headers, body)
    method, uri, version = parts
    if version != SIP_VERSION:
        raise SipParseError(f"unsupported version {version[:20]!r}")
    if not _TOKEN.match(method):
        raise SipParseError(f"bad method {method[:20]!r}")
    if not uri or " " in uri or ":" not in uri:
        raise SipParseError(f"bad request URI {uri[:60]!r}")
    return SipRequest(method, uri, headers, body)


class StreamFramer:
    """Cuts a TCP byte stream into whole messages by Content-Length (RFC 3261 §18.3)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while True:
            # Skip keep-alive CRLFs between messages (RFC 5626 §3.5.1).
            while self._buf[:2] == b"\r\n":
                del self._buf[:2]
            idx = self._buf.find(b"\r\n\r\n")
            if idx < 0:
                if len(self._buf) > _MAX_MESSAGE:
                    self._buf.clear()
                    raise SipParseError("header block too large on stream")
                return out
            head = bytes(self._buf[:idx])
            match = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*$", head)
            if not match:
                # Without a length we cannot find the next message: drop what we have.
                self._buf.clear()
                raise SipParseError("no Content-Length on a stream transport")
            total = idx + 4 + int(match.group(1))
            if total > _MAX_MESSAGE:
                self._buf.clear()
                raise SipParseError("message too large on stream")
            if len(self._buf) < total:
                return out
            out.append(bytes(self._buf[:total]))
            del self._buf[:total]


# --- Header value helpers ---------------------------------------------------------------------------


def parse_params(text: str) -> dict[str, str]:
    """``;a=1;b;c="x"`` → {"a": "1", "b": "", "c": "x"} (names lower-cased)."""
    params: dict[str, str] = {}
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        name, _, value = part.partition("=")
        params[name.strip().lower()] = value.strip().strip('"')
    return params


@dataclass
class NameAddr:
    """``"Display" <sip:user@host>;tag=x`` or ``sip:user@host;tag=x`` (From, To, Contact, Route)."""

    uri: str
    display: str = ""
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        text = text.strip()
        if "<" in text:
            display, _, rest = text.partition("<")
            uri, close, params = rest.partition(">")
            if not close:
                raise SipParseError(f"unclosed <> in {text[:60]!r}")
            return cls(uri.strip(), display.strip().strip('"'), parse_params(params))
        # Without <>, parameters after the URI belong to the header (§20.10).
        uri, _, params = text.partition(";")
        if not uri:
            raise SipParseError("empty address")
        return cls(uri.strip(), "", parse_params(params))

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def __str__(self) -> str:
        display = f'"{self.display}" ' if self.display else ""
        params = "".join(f";{k}={v}" if v else f";{k}" for k, v in self.params.items())
        return f"{display}<{self.uri}>{params}"


_VIA = re.compile(r"^\s*SIP\s*/\s*2\.0\s*/\s*([A-Za-z0-9-]+)\s+([^;]+?)\s*(?:;(.*))?$", re.S | re.I)


@dataclass
class Via:
    transport: str
    host: str
    port: int | None
    params: dict[str, str]

    @classmethod
    def parse(cls, text: str) -> Via:
        # Whitespace is allowed around the slashes and before parameters (RFC 4475 "wsinv").
        match = _VIA.match(text)
        if not match:
            raise SipParseError(f"bad Via {text[:60]!r}")
        transport, sent_by, params = match.groups()
        host, port = split_hostport(re.sub(r"\s+", "", sent_by))
        return cls(transport.upper(), host, port, parse_params(params or ""))

    @property
    def branch(self) -> str:
        return self.params.get("branch", "")


def split_hostport(text: str) -> tuple[str, int | None]:
    if text.startswith("["):  # IPv6 reference
        host, _, rest = text[1:].partition("]")
        port_s = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_s = text.partition(":")
    if not host:
        raise SipParseError(f"empty host in {text[:60]!r}")
    if port_s and not port_s.isdigit():
        raise SipParseError(f"bad port in {text[:60]!r}")
    port = int(port_s) if port_s else None
    if port is not None and not 0 < port < 65536:
        raise SipParseError(f"port out of range in {text[:60]!r}")
    return host, port


@dataclass
class SipUri:
    scheme: str
    user: str
    host: str
    port: int | None
    params: dict[str, str]

    @classmethod
    def parse(cls, text: str) -> SipUri:
        scheme, colon, rest = text.strip().partition(":")
        if not colon or scheme.lower() not in ("sip", "sips"):
            raise SipParseError(f"not a SIP URI {text[:60]!r}")
        rest = rest.split("?", 1)[0]
        hostpart, _, params = rest.partition(";")
        user, at, host = hostpart.rpartition("@")
        if not at:
            user, host = "", hostpart
        user = user.split(":", 1)[0]  # drop a password
        h, p = split_hostport(host)
        return cls(scheme.lower(), user, h, p, parse_params(params))


def reason_phrase(status: int) -> str:
    return _REASONS.get(status, "Unknown")


_REASONS = {
    100: "Trying",
    180: "Ringing",
    183: "Session Progress",
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    503: "Service Unavailable",
    603: "Decline",
}


def make_response(request: SipRequest, status: int, reason: str = "", *, to_tag: str | None = None,
                  body: bytes = b"", extra: list[tuple[str, str]] | None = None) -> SipResponse:
    """A response echoing Via, From, To (with our tag), Call-ID and CSeq (§8.2.6.2)."""
    headers = Headers()
    for k, v in request.headers:
        if canonical(k) in ("via", "from", "call-id", "cseq", "record-route"):
            if canonical(k) == "record-route" and not 100 < status < 300:
                continue
            headers.add(k, v)
        elif canonical(k) == "to":
            if to_tag and "tag=" not in v.lower():
                v = f"{v};tag={to_tag}"
            headers.add(k, v)
    for k, v in extra or []:
        headers.add(k, v)
    return SipResponse(status, reason or reason_phrase(status), headers, body)
