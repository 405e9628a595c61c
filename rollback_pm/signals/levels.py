"""Which lines are at error level or worse, in the formats services really log in.

``TRIGGERS`` are the byte strings one of which every such line contains; the scanner
finds them in a whole block at once (Aho-Corasick), and only the lines holding one come
here. ``classify`` then decides from the line's structure, so that an INFO line which
merely mentions "error" is not a signal:

- JSON logs: the ``level``/``severity``/``lvl``/``levelname``/``log.level``/``@l`` field
  (names or bunyan/pino numbers); a JSON line with a level field is decided by it alone;
- logfmt: ``level=error`` (logrus, slog, go-kit);
- nginx: ``[emerg]``, ``[alert]``, ``[crit]``, ``[error]``;
- PostgreSQL: ``FATAL:``, ``PANIC:``, ``ERROR:`` (two spaces follow its colon);
- klog (``E0513 08:47:21.123456 ...``) and Ruby's Logger (``E, [...] ERROR -- :``);
- the first level word of a plain line: Python logging (``ERROR:root:``,
  ``- ERROR -``), log4j/logback/Spring (``ERROR [main]``), JUL (``SEVERE:``), zap's
  console encoder, gunicorn's ``[ERROR]``...; the first one wins, so
  ``INFO retry after ERROR`` is INFO;
- an exception line (``java.lang.IllegalStateException: ...``, ``KeyError: 'X'``,
  ``TypeError: ...``) and lower-case ``error:``/``fatal:`` at the start of a line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

# Every error-or-worse line in the formats above contains one of these. "Z " is the end
# of the bundle line's Docker timestamp, so "Z E0" is a klog error line's start.
TRIGGERS: tuple[bytes, ...] = (
    b"ERROR",
    b"Error",
    b"error",
    b"FATAL",
    b"Fatal",
    b"fatal",
    b"CRIT",
    b"Crit",
    b"crit",
    b"PANIC",
    b"Panic",
    b"panic",
    b"SEVERE",
    b"EMERG",
    b"emerg",
    b"ALERT",
    b"[alert]",
    b"Traceback",
    b"Exception",
    b":in `",
    b":in '",
    b"fail: ",
    b"=err",
    b"=ERR",
    b'"err"',
    b'"ERR"',
    b"Z E0",
    b"Z E1",
    b"Z F0",
    b"Z F1",
    b"Z E, [",
    b"Z F, [",
    b'"level":5',
    b'"level":6',
    b'"level": 5',
    b'"level": 6',
)

ERROR, CRITICAL, FATAL = "error", "critical", "fatal"
RANK = {ERROR: 1, CRITICAL: 2, FATAL: 3}

_WORDS = {
    "error": ERROR,
    "err": ERROR,
    "eror": ERROR,
    "severe": ERROR,
    "critical": CRITICAL,
    "crit": CRITICAL,
    "alert": CRITICAL,
    "fatal": FATAL,
    "panic": FATAL,
    "dpanic": FATAL,
    "emerg": FATAL,
    "emergency": FATAL,
    "fail": ERROR,
}
# Level words that make a line "not an error" when they come first.
_LOW = {"trace", "debug", "info", "information", "notice", "warn", "warning", "log", "verbose", "dbg", "inf", "wrn"}


@dataclass(frozen=True)
class Classified:
    level: str  # error | critical | fatal
    format: str  # json | logfmt | nginx | postgresql | klog | ruby | plain | exception
    message: str  # what the line says, without its own timestamp/level decoration where known


def _word_level(word: str) -> str | None:
    return _WORDS.get(word.strip().lower())


# --- JSON -------------------------------------------------------------------------------
_JSON_LEVEL_KEYS = ("level", "severity", "lvl", "levelname", "log.level", "@l", "loglevel", "log_level")
_JSON_MESSAGE_KEYS = ("msg", "message", "event", "@m", "@mt", "error", "err", "exception", "error.message")
_JSON_LEVEL = re.compile(
    r'"(level|severity|lvl|levelname|log\.level|@l|loglevel|log_level)"\s*:\s*("([^"]{0,20})"|\d+)'
)
_JSON_MESSAGE = re.compile(r'"(msg|message|event|@m|@mt|error|err)"\s*:\s*"((?:[^"\\]|\\.){0,500})"')


def _json_level(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):  # bunyan / pino: 50 error, 60 fatal
        return FATAL if value >= 60 else ERROR if value >= 50 else None
    if isinstance(value, str):
        return _word_level(value)
    return None


def _json_exception(value: object) -> list[str]:
    """structlog's dict tracebacks ([{exc_type, exc_value}, ...], the last is the one raised); ECS' error object."""
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        value = value[-1]
    if isinstance(value, dict):
        kind = value.get("exc_type") or value.get("type")
        message = value.get("exc_value") or value.get("message")
        if isinstance(kind, str) and isinstance(message, str):
            return [f"{kind}: {message}"]
        if isinstance(message, str):
            return [message]
    return []


def _classify_json(text: str) -> Classified | bool | None:
    """A level decision, or False when the line has no level field (let the others decide)."""
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict):
        for key in _JSON_LEVEL_KEYS:
            if key in doc:
                level = _json_level(doc[key])
                if level is None:
                    return None
                parts = [str(doc[k]) for k in _JSON_MESSAGE_KEYS if isinstance(doc.get(k), (str, int, float))]
                parts += _json_exception(doc.get("exception") or doc.get("error") or doc.get("err"))
                return Classified(level, "json", " ".join(parts)[:1000] or text)
        return False
    match = _JSON_LEVEL.search(text)  # cut or malformed JSON: read the fields as text
    if match is None:
        return False
    raw = match.group(3) if match.group(3) is not None else match.group(2)
    level = _json_level(int(raw)) if raw.isdigit() else _json_level(raw)
    if level is None:
        return None
    message = " ".join(m.group(2) for m in _JSON_MESSAGE.finditer(text))
    return Classified(level, "json", message or text)


# --- logfmt -----------------------------------------------------------------------------
_LOGFMT_LEVEL = re.compile(r'(?:^|\s)(?:level|lvl|severity|loglevel)=("?)([A-Za-z]+)\1(?=\s|$)')
_LOGFMT_MESSAGE = re.compile(r'(?:^|\s)(?:msg|message|err|error)=("(?:[^"\\]|\\.)*"|\S+)')

# --- fixed formats ----------------------------------------------------------------------
_NGINX = re.compile(r"^(?:\d{4}/\d\d/\d\d \d\d:\d\d:\d\d |nginx: )\[(emerg|alert|crit|error|warn|notice|info|debug)\] ")
_POSTGRES = re.compile(
    r"(?:^|\s)(DEBUG\d?|LOG|INFO|NOTICE|WARNING|ERROR|FATAL|PANIC|DETAIL|HINT|CONTEXT|STATEMENT|QUERY|LOCATION):  (?=\S)"
)
_KLOG = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d\d\.\d{6}\s+\d+ [^\s\]]+:\d+\] ")
_RUBY_LOGGER = re.compile(r"^[DIWEFA], \[[^\]]*\]\s+([A-Z]+) -- [^:]*: ")
# The first level word of a plain line (upper case, or bracketed/cased forms); only the head counts.
_LEVEL_WORD = re.compile(
    r"(?<![\w-])(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|FATAL|CRITICAL|CRIT|PANIC|SEVERE|EMERG|ALERT)(?![\w-])"
    r"|[\[(<](trace|debug|info|notice|warn|warning|error|err|fatal|critical|crit|panic)[\])>]"
    r"|(?<![\w-])(Trace|Debug|Info|Warn|Warning|Error|Fatal|Critical)(?=[\]:|\s])"
)
_HEAD_CHARS = 160
_GO_HTTP_PANIC = re.compile(r"^(?:\d{4}/\d\d/\d\d \d\d:\d\d:\d\d(?:\.\d+)? )?http: panic serving ")
# Lower-case "error:" at the start (CLI tools, rustc, git's "fatal:"), .NET's "fail:"/"crit:".
_LOWER_START = re.compile(r"^(?:\S+ ){0,2}?(error|fatal|critical|crit|panic|fail)(?:\[[\w-]+\])?: ")
# An exception line: a (dotted) class name ending in Error/Exception, then ":" or the end.
EXCEPTION = re.compile(
    r"^\s*(?:Uncaught |Unhandled |Exception in thread \"[^\"]*\" )?"
    r"((?:[A-Za-z_$][\w$]*\.)*[A-Za-z_$]?[\w$]*(?:Error|Exception|ExceptionGroup|Exit|Interrupt|Fault|Failure))"
    r"(?: \[[\w-]+\])?(?::(?: .*)?$|$)"
)


def classify(text: str) -> Classified | None:
    """The line's level if it is error or worse, else None. ``text`` excludes the bundle prefix."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        decided = _classify_json(stripped)
        if decided is not False:
            return decided  # type: ignore[return-value]
    match = _LOGFMT_LEVEL.search(text)
    if match:
        level = _word_level(match.group(2))
        if level is None:
            return None
        message = " ".join(m.group(1).strip('"') for m in _LOGFMT_MESSAGE.finditer(text))
        return Classified(level, "logfmt", message or text)
    match = _NGINX.match(text)
    if match:
        level = _word_level(match.group(1))
        return Classified(level, "nginx", text[match.end() :]) if level else None
    match = _POSTGRES.search(text, 0, _HEAD_CHARS + 12)
    if match:
        level = _word_level(match.group(1))
        return Classified(level, "postgresql", text[match.end() :]) if level else None
    match = _KLOG.match(text)
    if match:
        level = {"E": ERROR, "F": FATAL}.get(match.group(1))
        return Classified(level, "klog", text[match.end() :]) if level else None
    match = _RUBY_LOGGER.match(text)
    if match:
        level = _word_level(match.group(1))
        return Classified(level, "ruby", text[match.end() :]) if level else None
    if _GO_HTTP_PANIC.match(text):
        return Classified(ERROR, "go", text)  # net/http recovered a handler's panic; its goroutine dump follows
    if EXCEPTION.match(text):
        return Classified(ERROR, "exception", text.strip())
    match = _LEVEL_WORD.search(text, 0, _HEAD_CHARS)
    if match:
        word = next(g for g in match.groups() if g)
        level = _word_level(word)
        if level is None:
            return None
        return Classified(level, "plain", text)
    match = _LOWER_START.match(text)
    if match:
        return Classified(_word_level(match.group(1)) or ERROR, "plain", text)
    return None
