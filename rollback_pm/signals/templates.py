"""Log line -> template: the variable parts masked, so repeats of one message collapse.

Masking is deterministic and needs no history (unlike a clustering miner such as Drain,
whose templates change with the lines it saw before): the same message gives the same
template in every bundle, which is what "new in the bad version" and the repeat
signature of a failure compare. Placeholders name what they replaced::

    2026-05-13 08:47:21,123 ERROR cannot reach 10.0.0.7:5432 (attempt 3/10) id=4f2a9c1e
    <TS> ERROR cannot reach <IP> (attempt <NUM>/<NUM>) id=<HEX>

Order matters: timestamps, UUIDs, IPs and hex ids are taken before bare numbers, and
quoted strings last.
"""

from __future__ import annotations

import re
from collections.abc import Callable

MAX_TEMPLATE_CHARS = 300

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"


def _hex_id(match: re.Match[str]) -> str:
    word = match.group()
    return "<HEX>" if "0" in word and not word.isdigit() else word


# The rules run on the line with every digit turned into 0 (see ``template``), so each
# starts with a literal or a character class where it can: Python's re then jumps from
# one candidate character to the next instead of trying the pattern at every position.
# (pattern, replacement, a string the text must hold for the pattern to be tried)
_RULES: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str], str]] = [
    # ISO and common log timestamps (with fractions, zones), Apache and syslog dates, bare times.
    (
        re.compile(
            r"0000[-/]00[-/]00(?:[T ]00:00(?::00(?:[.,]0+)?)?(?:\s?(?:Z|[+-]00:?00|UTC|GMT)\b)?)?"
            rf"|00/{_MONTH}/0000(?::00:00:00(?: [+-]0000)?)?"
            r"|0(?<!\w0)0:00:00(?:[.,]0+)?(?!\w)"
        ),
        "<TS>",
        "0",
    ),
    (re.compile(rf"{_MONTH} [ 0]0 00:00:00"), "<TS>", ":"),
    (
        re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w-])"),
        "<UUID>",
        "-",
    ),
    # IPv4 with an optional port; IPv6 with at least two colons between hex groups.
    (re.compile(r"0(?<![\w.]0)0{0,2}(?:\.0{1,3}){3}(?::0{1,5})?(?![\w.])"), "<IP>", "."),
    (
        re.compile(
            r"[0-9a-fA-F](?<![\w:][0-9a-fA-F])[0-9a-fA-F]{0,3}:(?:[0-9a-fA-F]{1,4}:){1,6}:?[0-9a-fA-F]{1,4}(?![\w:])"
        ),
        "<IP>",
        ":",
    ),
    (re.compile(r"\[?::0\]?(?::0+)?"), "<IP>", "::"),
    (re.compile(r"0(?<!\w0)[xX][0-9a-fA-F]+(?!\w)"), "<HEX>", "0"),
    # Hex ids: 6+ hex digits holding both a digit and a letter (a commit, a trace id).
    (re.compile(r"[0-9a-fA-F](?<!\w[0-9a-fA-F])[0-9a-fA-F]{5,}(?!\w)"), _hex_id, "0"),
    (re.compile(r"0+(?:\.0+)*"), "<NUM>", "0"),
    # Quoted strings: "..." and '...' (an apostrophe inside a word, as in "can't", opens none),
    # last: what they held is masked already, and a quote after a placeholder opens one
    # whether the placeholder is new or from an earlier pass.
    (re.compile(r'"(?:[^"\\\n]|\\.){0,200}"'), "<STR>", '"'),
    (re.compile(r"'(?<!\w')(?:[^'\\\n]|\\.){0,200}'(?!\w)"), "<STR>", "'"),
]
_SPACE = re.compile(r"\s+")
# Every rule treats all digits alike, so the template of a line is the template of the line
# with each digit replaced by 0: that is the cache key, and a retry loop's lines share it.
_ZEROS = str.maketrans("123456789", "000000000")
_CACHE_SIZE = 4096
_cache: dict[str, str] = {}


def template(text: str) -> str:
    """The line's template: stable for every line that differs only in masked parts."""
    key = text.translate(_ZEROS)
    found = _cache.get(key)
    if found is not None:
        return found
    masked = key
    for _ in range(4):  # to a fixed point, so a template's template is itself: masking can
        before = masked  # make a quote open a string that it did not open before ("''A''")
        for pattern, replacement, needs in _RULES:
            if needs in masked:
                masked = pattern.sub(replacement, masked)
        masked = _SPACE.sub(" ", masked).strip()[:MAX_TEMPLATE_CHARS]
        if masked == before:
            break
    if len(_cache) >= _CACHE_SIZE:
        _cache.clear()
    _cache[key] = masked
    return masked
