"""Bytes on the wire: event serialisation (plain, json, xml) and the fixed server frames.

Every text here is a protocol fact of FreeSWITCH 1.10.12; where it comes from source rather
than from the captures in ``tests/data/esl-captures`` the comment names file and function.
Serialisers are written for speed: the simulator encodes each fired event once per format and
hands the same bytes to every subscriber, and per-value encodings are memoised because channel
events repeat the same values (profile, variables) many times over.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

Pairs = Sequence[tuple[str, str]]

# --------------------------------------------------------------------------------------------
# Fixed frames
# --------------------------------------------------------------------------------------------

AUTH_REQUEST = b"Content-Type: auth/request\n\n"

# mod_event_socket.c:listener_run -> send_disconnect; bytes as captured (esl_plain.raw tail).
DISCONNECT_MESSAGE = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
DISCONNECT_NOTICE = (
    b"Content-Type: text/disconnect-notice\nContent-Length: %d\n\n" % len(DISCONNECT_MESSAGE)
    + DISCONNECT_MESSAGE
)

# mod_event_socket.c:listener_run copies the reply into `char reply[512]` (snprintf), so a
# Reply-Text is cut at 511 bytes.
REPLY_MAX = 511


def command_reply(text: str) -> bytes:
    """``Content-Type: command/reply`` with an unencoded ``Reply-Text`` (listener_run)."""
    raw = text.encode("utf-8", "surrogateescape")[:REPLY_MAX]
    return b"Content-Type: command/reply\nReply-Text: " + raw + b"\n\n"


def command_reply_raw(block: str) -> bytes:
    """A reply whose header block is given whole (parse_command's ``~`` replies, e.g. bgapi)."""
    raw = block.encode("utf-8", "surrogateescape")[:REPLY_MAX]
    return b"Content-Type: command/reply\n" + raw


def api_response(body: str) -> bytes:
    """``api`` output (mod_event_socket.c:api_exec): Content-Type first, then Content-Length."""
    raw = body.encode("utf-8", "surrogateescape")
    return b"Content-Type: api/response\nContent-Length: %d\n\n" % len(raw) + raw


def event_frame(payload: bytes, fmt: str) -> bytes:
    """Outer frame of an event (read_packet): Content-Length FIRST, then Content-Type."""
    return (b"Content-Length: %d\nContent-Type: text/event-%s\n\n" % (len(payload), fmt.encode())
            + payload)


# --------------------------------------------------------------------------------------------
# switch_utils.c:switch_url_encode_opt (double_encode false) with SWITCH_URL_UNSAFE from
# switch_utils.h: control bytes, bytes > 0x7E and `\r\n #%&+:;<=>?@[\]^`{|}"` become %XX
# (upper-case hex, one per UTF-8 byte); a '%' already followed by two upper-case hex digits is
# copied as is (hence plain encoding is lossy, see the captures README).
# --------------------------------------------------------------------------------------------

_URL_NEEDS = re.compile(r"%(?![0-9A-F]{2})|[^A-Za-z0-9!$'()*,\-./_~%]")
_URL_CACHE: dict[str, str] = {}
_CACHE_MAX = 200_000


def _pct(match: re.Match[str]) -> str:
    return "".join([f"%{b:02X}" for b in match.group().encode("utf-8", "surrogateescape")])


def url_encode(value: str) -> str:
    """FreeSWITCH's URL encoding of one header value (not the ``_undef_`` rule)."""
    enc = _URL_CACHE.get(value)
    if enc is None:
        enc = _URL_NEEDS.sub(_pct, value)
        if len(_URL_CACHE) >= _CACHE_MAX:
            _URL_CACHE.clear()
        _URL_CACHE[value] = enc
    return enc


# --------------------------------------------------------------------------------------------
# Plain: switch_event.c:switch_event_serialize(encode=TRUE):
#   "<name>: <urlencoded value or _undef_ when that is empty>\n" per header, then
#   "Content-Length: <strlen(body)>\n\n<body>" when the body is non-empty, else "\n".
# --------------------------------------------------------------------------------------------

_PLAIN_CACHE: dict[tuple[str, str], str] = {}


def plain_line(name: str, value: str) -> str:
    key = (name, value)
    line = _PLAIN_CACHE.get(key)
    if line is None:
        line = f"{name}: {url_encode(value) or '_undef_'}\n"
        if len(_PLAIN_CACHE) >= _CACHE_MAX:
            _PLAIN_CACHE.clear()
        _PLAIN_CACHE[key] = line
    return line


def serialize_plain(prefix: str, pairs: Iterable[tuple[str, str]], body: str | None) -> bytes:
    """Plain event text. ``prefix`` holds already-encoded lines (the standard block)."""
    cache = _PLAIN_CACHE
    parts = [prefix]
    append = parts.append
    for pair in pairs:
        line = cache.get(pair)
        if line is None:
            line = plain_line(pair[0], pair[1])
        append(line)
    if body:
        raw = body.encode("utf-8", "surrogateescape")
        append(f"Content-Length: {len(raw)}\n\n")
        return "".join(parts).encode("utf-8", "surrogateescape") + raw
    append("\n")
    return "".join(parts).encode("utf-8", "surrogateescape")


# --------------------------------------------------------------------------------------------
# JSON: switch_event.c:switch_event_serialize_json_obj + cJSON_PrintUnformatted:
#   one compact object, keys in header order (repeated headers repeat the key, as cJSON adds
#   duplicates), raw values, ARRAY:: values as arrays of strings, then when a body exists
#   "Content-Length": "<strlen>" and "_body". cJSON escapes `"`, `\` and bytes < 0x20 only
#   (\b \f \n \r \t by name, others \u00xx) and passes other bytes through, which is what
#   json.dumps(ensure_ascii=False) does.
# --------------------------------------------------------------------------------------------

_JSON_NEEDS = re.compile(r'["\\\x00-\x1f]')
_JSON_CACHE: dict[str, str] = {}
_PAIR_CACHE: dict[tuple[str, str], str] = {}
ARRAY_PREFIX = "ARRAY::"


def json_str(value: str) -> str:
    enc = _JSON_CACHE.get(value)
    if enc is None:
        enc = json.dumps(value, ensure_ascii=False) if _JSON_NEEDS.search(value) else f'"{value}"'
        if len(_JSON_CACHE) >= _CACHE_MAX:
            _JSON_CACHE.clear()
        _JSON_CACHE[value] = enc
    return enc


def split_array(value: str) -> list[str]:
    """switch_event.c:switch_event_add_array: ``ARRAY::a|:b`` -> [a, b]."""
    return value[len(ARRAY_PREFIX):].split("|:")


def json_pair(name: str, value: str) -> str:
    key = (name, value)
    enc = _PAIR_CACHE.get(key)
    if enc is None:
        if value.startswith(ARRAY_PREFIX):
            val = "[" + ",".join(json_str(v) for v in split_array(value)) + "]"
        else:
            val = json_str(value)
        enc = f"{json_str(name)}:{val}"
        if len(_PAIR_CACHE) >= _CACHE_MAX:
            _PAIR_CACHE.clear()
        _PAIR_CACHE[key] = enc
    return enc


def serialize_json(prefix: str, pairs: Iterable[tuple[str, str]], body: str | None) -> bytes:
    """JSON event text. ``prefix`` holds the already-encoded members of the standard block."""
    cache = _PAIR_CACHE
    parts = [prefix] if prefix else []
    append = parts.append
    for pair in pairs:
        enc = cache.get(pair)
        if enc is None:
            enc = json_pair(pair[0], pair[1])
        append(enc)
    if body is not None:
        append(f'"Content-Length":"{len(body.encode("utf-8", "surrogateescape"))}"')
        append('"_body":' + json_str(body))
    return ("{" + ",".join(parts) + "}").encode("utf-8", "surrogateescape")


# --------------------------------------------------------------------------------------------
# XML: switch_event.c:switch_event_xmlize + switch_xml.c:switch_xml_toxml (formatted, no
# <?xml?> header). Each header value (each ARRAY item) is URL-encoded as in plain and becomes
# <Name>value</Name> under <headers>; a non-empty body adds <Content-Length> and <body>, whose
# text goes through switch_xml_ampencode. The indentation rules of switch_xml_toxml_r give,
# byte for byte as captured (public/freeswitch-clj):
#   <event>\n  <headers>\n    <H>v</H>\n ...  </headers>\n  <Content-Length>N</Content-Length>\n
#   <body>TEXT[two spaces if TEXT ends in \n]</body>\n</event>\n
# --------------------------------------------------------------------------------------------


def xml_text(data: bytes) -> bytes:
    """switch_xml.c:switch_xml_ampencode for element text (a == 0)."""
    out = bytearray()
    immune = False
    expecting = 0
    code = 0
    n = len(data)
    for i in range(n):
        c = data[i]
        if immune:
            if c == 0:
                break
            out.append(c)
            continue
        if c == 0:
            break
        if c == 0x26:
            out += b"&amp;"
        elif c == 0x3C:
            if i + 1 < n and data[i + 1] == 0x21:  # "<!" turns escaping off for the rest
                out.append(c)
                immune = True
            else:
                out += b"&lt;"
        elif c == 0x3E:
            out += b"&gt;"
        elif c == 0x0D:
            out += b"&#xD;"
        elif c >= 0x80 and expecting == 0:
            num = 1
            while num < 4 and (c >> (7 - num)) & 1:
                num += 1
            if num == 2:
                code = c & 0x1F
            elif num == 3:
                code = c & 0x0F
            elif num == 4:
                code = c & 0x07
            # num == 1 is a stray continuation byte: FreeSWITCH logs and drops it
            expecting = num - 1
        elif expecting > 0:
            if (c >> 6) & 3 == 2:
                code = (code << 6) | (c & 0x3F)
                expecting -= 1
                if expecting == 0:
                    out += b"&#x%X;" % code
            else:
                expecting = 0  # invalid sequence: this byte is dropped too
        else:
            out.append(c)
    return bytes(out)


def serialize_xml(pairs: Iterable[tuple[str, str]], body: str | None) -> bytes:
    """XML event text for ``event xml`` listeners (all headers, standard block included)."""
    parts = ["<event>\n  <headers>\n"]
    append = parts.append
    for name, value in pairs:
        values = split_array(value) if value.startswith(ARRAY_PREFIX) else (value,)
        for v in values:
            append(f"    <{name}>{url_encode(v)}</{name}>\n")
    append("  </headers>\n")
    head = "".join(parts).encode("utf-8", "surrogateescape")
    if not body:
        return head + b"</event>\n"
    raw = body.encode("utf-8", "surrogateescape")
    text = xml_text(raw)
    tail = b"  </body>\n</event>\n" if text.endswith(b"\n") else b"</body>\n</event>\n"
    return head + b"  <Content-Length>%d</Content-Length>\n  <body>" % len(raw) + text + tail
