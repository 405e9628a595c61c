"""Log line -> template: the variable parts masked, so repeats of one message collapse.

Masking is deterministic and needs no history (unlike a clustering miner such as Drain,
whose templates change with the lines it saw before): the same message gives the same
template in every bundle, which is what "new in the bad version" and the repeat
signature of a failure compare. Placeholders name what they replaced::

    2026-05-13 08:47:21,123 ERROR cannot reach 10.0.0.7:5432 (attempt 3/10) id=4f2a9c1e
    <TS> ERROR cannot reach <IP> (attempt <NUM>/<NUM>) id=<HEX>

Order matters: timestamps, UUIDs, IPs and hex ids are taken before bare numbers, and
quoted strings before anything inside them.
"""

from __future__ import annotations

import re

MAX_TEMPLATE_CHARS = 300

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
# (pattern, placeholder, a character the text must hold for the pattern to be tried)
_RULES: list[tuple[re.Pattern[str], str, str]] = [
    # ISO and common log timestamps (with fractions, zones), Apache/syslog dates, bare times.
    (
        re.compile(
            r"\d{4}[-/]\d\d[-/]\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?(?:\s?(?:Z|[+-]\d\d:?\d\d|UTC|GMT)\b)?)?"
            rf"|\d\d/{_MONTH}/\d{{4}}(?::\d\d:\d\d:\d\d(?: [+-]\d{{4}})?)?"
            rf"|\b{_MONTH} [ \d]\d \d\d:\d\d:\d\d"
            r"|\b\d\d:\d\d:\d\d(?:[.,]\d+)?\b"
        ),
        "<TS>",
        "0",
    ),
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "<UUID>", "-"),
    # IPv4 with an optional port; IPv6 with at least two colons between hex groups.
    (
        re.compile(
            r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\w.])"
            r"|(?<![\w:])(?:[0-9a-fA-F]{1,4}:){2,7}(?::?[0-9a-fA-F]{1,4})(?![\w:])|\[?::1\]?(?::\d+)?"
        ),
        "<IP>",
        ":",
    ),
    # Quoted strings: "..." and '...' (an apostrophe inside a word, as in "can't", opens none).
    (re.compile(r'"(?:[^"\\\n]|\\.){0,200}"|(?<!\w)\'(?:[^\'\\\n]|\\.){0,200}\'(?!\w)'), "<STR>", ""),
    (re.compile(r"\b0[xX][0-9a-fA-F]+\b"), "<HEX>", "0"),
    # Hex ids: 6+ hex digits holding both a digit and a letter (a commit, a trace id).
    (re.compile(r"\b(?=[0-9a-fA-F]*[a-fA-F])(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{6,}\b"), "<HEX>", "0"),
    (re.compile(r"\d+(?:\.\d+)*"), "<NUM>", "0"),
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
    for pattern, placeholder, needs in _RULES:
        if not needs or needs in masked or (needs == ":" and "." in masked):
            masked = pattern.sub(placeholder, masked)
    masked = _SPACE.sub(" ", masked).strip()[:MAX_TEMPLATE_CHARS]
    if len(_cache) >= _CACHE_SIZE:
        _cache.clear()
    _cache[key] = masked
    return masked
