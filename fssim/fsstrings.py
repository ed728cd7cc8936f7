"""FreeSWITCH's argument splitting, as its api commands and originate read their input.

Written from src/switch_utils.c (switch_separate_string: separate_string_blank_delim for a
space, separate_string_char_delim otherwise, each piece then cleaned by
cleanup_separated_string) and src/switch_event.c:switch_event_create_brackets. What matters
for a client: only single quotes and backslashes protect a delimiter (braces do not: a space
inside ``{...}`` splits an originate's arguments), a backslash escape is undone once per pass,
``\\s`` `\\n` `\\r` `\\t` become a space, LF, CR, TAB, and unquoted leading spaces go.
An originate variable crosses three such passes (space, comma, equals), which is why
``esl_handlers.commands.escape_originate_value`` escapes three times.
"""

from __future__ import annotations

_UNESCAPE = {"n": "\n", "r": "\r", "t": "\t", "s": " "}


def cleanup(s: str, delim: str | None) -> str:
    """cleanup_separated_string: quotes and escapes undone, outer spaces dropped."""
    i = 0
    while i < len(s) and s[i] == " ":
        i += 1
    out: list[str] = []
    end: int | None = None
    inside = False
    while i < len(s):
        ch = s[i]
        escaped = False
        if ch == "\\" and i + 1 < len(s):
            e = s[i + 1]
            if e in ("'", '"', "\\") or (delim and e == delim):
                out.append(e)
                escaped = True
            elif _UNESCAPE.get(e, e) != e:
                out.append(_UNESCAPE[e])
                escaped = True
            if escaped:
                i += 1
                end = len(out)
        if not escaped:
            if ch == "'" and (inside or "'" in s[i + 1:]):
                inside = not inside
                if inside:
                    end = len(out)
            else:
                out.append(ch)
                if ch != " " or inside:
                    end = len(out)
        i += 1
    return "".join(out if end is None else out[:end])


def split_char(buf: str, delim: str, maxn: int = 1024) -> list[str]:
    """separate_string_char_delim + cleanup (at most ``maxn`` pieces, the last keeps the rest)."""
    starts: list[int] = []
    cuts: list[int] = []
    i, inside, finding = 0, False, False
    while i < len(buf) and len(starts) < maxn:      # C: while (*ptr && count < arraylen)
        if not finding:
            starts.append(i)
            finding = True
            continue
        ch = buf[i]
        if ch == "\\":
            i += 1
        elif ch == "'" and (inside or "'" in buf[i + 1:]):
            inside = not inside
        elif ch == delim and not inside:
            cuts.append(i)
            finding = False
        i += 1
    parts = [buf[s:cuts[k]] if k < len(cuts) else buf[s:] for k, s in enumerate(starts)]
    return [cleanup(p, delim) for p in parts]


def split_blank(buf: str, maxn: int = 10) -> list[str]:
    """separate_string_blank_delim + cleanup: runs of spaces separate, quotes protect."""
    starts: list[int] = []
    cuts: list[int] = []
    i, inside, state = 0, False, "start"
    while i < len(buf) and len(starts) < maxn:
        ch = buf[i]
        if state == "start":
            starts.append(i)
            state = "skip_initial"
        elif state == "skip_initial":
            if ch == " ":
                i += 1
            else:
                state = "find"
        elif state == "find":
            if ch == "\\":
                i += 1
            elif ch == "'":
                inside = not inside
            elif ch == " " and not inside:
                cuts.append(i)
                state = "skip_end"
            i += 1
        elif ch == " ":
            i += 1
        else:
            state = "start"
    parts = [buf[s:cuts[k]] if k < len(cuts) else buf[s:] for k, s in enumerate(starts)]
    return [cleanup(p, None) for p in parts]


def bracket_vars(block: str) -> dict[str, str]:
    """The inside of a ``{...}`` / ``<...>`` block as switch_event_create_brackets reads it:
    comma-separated ``name=value`` pairs, as :func:`block_vars` sets them."""
    return block_vars(split_char(block, ","))


def block_vars(items: list[str]) -> dict[str, str]:
    """``name=value`` items (already split) as channel variables: an item without ``=`` is
    ignored, and an empty value unsets the name (switch_channel.c:
    switch_channel_set_variable_var_check deletes a variable set to ""; the real switch
    read such a variable back as ``_undef_``, tests/data/originate_escaping.json)."""
    out: dict[str, str] = {}
    for item in items:
        kv = split_char(item, "=", 2)
        if len(kv) == 2:
            if kv[1]:
                out[kv[0]] = kv[1]
            else:
                out.pop(kv[0], None)
    return out
