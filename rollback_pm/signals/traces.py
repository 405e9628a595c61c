"""Multi-line blocks kept whole: stack traces, and PostgreSQL's DETAIL/HINT lines.

The scanner hands a ``Block`` the following lines of one container, one at a time;
``feed`` says whether the line belongs to the block (TAKE), is its last line (END) or
is not part of it (STOP, the line is left for the scanner). A block starts at a trace
head (``Traceback (most recent call last):``, ``panic:``, ``Exception in thread``, a
Ruby ``file:line:in 'm': msg (Class)`` line) or at an error line, whose next line may
start a trace (``logger.exception``, log4j's ERROR line + exception, Go's ``http: panic
serving`` + goroutine dump) or carry PostgreSQL's details.

What belongs, per language:

- Python: indented frame and code lines, the final ``KeyError: 'DATABASE_URL'`` line
  (and an indented continuation of its message), chained exceptions (``During handling
  of the above exception...`` / ``The above exception was the direct cause...``).
  The cause line is the last exception line.
- Java: ``\\tat ...``, ``... N more``, ``Caused by:`` and ``Suppressed:``; the cause is
  the last ``Caused by:`` (the root), else the exception line.
- Go: ``[signal ...]``, ``goroutine N [running]:``, function and ``\\t/path.go:N`` lines,
  ``created by``, blank lines between goroutines, ``exit status N``; the cause is the
  ``panic:``/``fatal error:`` line.
- Node: ``    at ...`` frames, an error object's ``{ ... }`` dump, ``[cause]:``, ``Node.js
  vN``; the cause is the ``Error: ...`` line.
- Ruby: ``\\tfrom ...`` lines; the cause is the first line.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

from rollback_pm.signals.levels import EXCEPTION

PYTHON, JAVA, GO, NODE, RUBY, POSTGRES = "python", "java", "go", "node", "ruby", "postgresql"
TRACE_LANGUAGES = (PYTHON, JAVA, GO, NODE, RUBY)

TAKE, END, STOP = 1, 2, 0
MAX_LINE_CHARS = 500  # one excerpt line
HEAD_KEEP, TAIL_KEEP = 60, 40  # excerpt lines kept from a long block's start and end
MAX_BLOCK_LINES = 5000  # a block longer than this is cut (a dump of thousands of goroutines)

_PY_HEAD = "Traceback (most recent call last):"
_PY_CHAIN = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)
_RUBY_HEAD = re.compile(r"^\S+:\d+:in [`'].*\)$")
_JAVA_FRAME = re.compile(r"^\s+at \S+\(.*\)\s*(?:~?\[.*\])?$|^\tat |^\s+\.\.\. \d+ (?:more|common frames omitted)")
_JAVA_FILE = re.compile(r"\.(?:java|kt|scala|groovy|clj):\d+\)|\((?:Native Method|Unknown Source)\)|^\tat ")
_NODE_FRAME = re.compile(r"^\s+at ")
_GO_HEAD = re.compile(r"^(?:panic: |fatal error: )")
_GO_GOROUTINE = re.compile(r"^goroutine \d+ .*\]:$")
_GO_FUNC = re.compile(r"^(?:created by )?[\w./*()$\[\]{}<>,-]+\(.*\)(?: in goroutine \d+)?$|^created by ")
_GO_OTHER = re.compile(r"^(?:\[signal |runtime stack:|exit status \d+$|\s)")
_PG_DETAIL = re.compile(r"(?:^|\s)(?:DETAIL|HINT|CONTEXT|STATEMENT|QUERY|LOCATION):  ")
_PG_LEVEL = re.compile(r"(?:^|\s)(?:ERROR|FATAL|PANIC):  ")
_DECORATION = re.compile(r"^[\s|+]+")


def trace_start(text: str) -> str | None:
    """The language of a stack trace whose first line this is, or None."""
    if _PY_HEAD in text and (text.lstrip().startswith(_PY_HEAD) or "Exception Group Traceback" in text):
        return PYTHON
    if _GO_HEAD.match(text):
        return GO
    if text.startswith("Exception in thread "):
        return JAVA
    if _RUBY_HEAD.match(text) and re.search(r"\(\w+(?:::\w+)*\)$", text):
        return RUBY
    return None


def _cut(text: str) -> str:
    return text if len(text) <= MAX_LINE_CHARS else text[: MAX_LINE_CHARS - 1] + "…"


@dataclass
class Block:
    """A signal's lines: a trace, or an error line with what belongs to it."""

    language: str | None  # set once known; None: a plain error line, maybe followed by a trace
    first_line: int
    first_ts: str
    stream: str
    header: str | None = None  # the error line that introduced a trace (logger.exception's message)
    cause: str = ""  # the line that says what went wrong
    frames: int = 0
    count: int = 0  # lines taken
    last_line: int = 0
    last_ts: str = ""
    head: list[str] = field(default_factory=list)
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_KEEP))
    state: str = "start"
    _pending: list[str] = field(default_factory=list)  # blank lines that may still belong

    @classmethod
    def open(cls, text: str, line: int, ts: str, stream: str, language: str | None) -> Block:
        block = cls(language=language, first_line=line, first_ts=ts, stream=stream)
        block._take(text, line, ts)
        if language is None:
            block.cause = text.strip()
            block.state = "peek"
        else:
            block.cause = _strip_cause(text) if language != PYTHON else ""
            block.state = {PYTHON: "py-frames", GO: "go", JAVA: "java-exc", RUBY: "ruby"}[language]
        return block

    @property
    def is_trace(self) -> bool:
        return self.language in TRACE_LANGUAGES and (self.frames > 0 or self.language in (PYTHON, GO))

    @property
    def elided(self) -> int:
        return max(0, self.count - len(self.head) - len(self.tail))

    def excerpt(self) -> list[str]:
        return self.head + list(self.tail)

    def _take(self, text: str, line: int, ts: str) -> None:
        for blank in self._pending:
            self._add(blank)
        self._pending.clear()
        self._add(_cut(text))
        self.last_line, self.last_ts = line, ts

    def _add(self, text: str) -> None:
        self.count += 1
        if len(self.head) < HEAD_KEEP:
            self.head.append(text)
        else:
            self.tail.append(text)

    def feed(self, text: str, line: int, ts: str) -> int:
        """Does this next line of the container belong to the block?"""
        if self.count >= MAX_BLOCK_LINES:
            return STOP
        verdict = getattr(self, "_" + self.state.replace("-", "_"))(text)
        if verdict == STOP:
            return STOP
        if verdict == "pending":
            self._pending.append("")
            return TAKE
        self._take(text, line, ts)
        return verdict

    # --- what follows an ordinary error line -------------------------------------------
    def _peek(self, text: str) -> int | str:
        stripped = text.strip()
        if _PY_HEAD in text:
            self._become(PYTHON, "py-frames")
            self.header = self.head[0]
            return TAKE
        if _GO_GOROUTINE.match(text) or _GO_HEAD.match(text):
            self._become(GO, "go")
            self.header = self.head[0]
            if _GO_HEAD.match(text):
                self.cause = stripped
            return TAKE
        if _PG_LEVEL.search(self.head[0]) and _PG_DETAIL.search(text):
            self.language, self.state = POSTGRES, "pg"
            return TAKE
        if _JAVA_FRAME.match(text) or _NODE_FRAME.match(text):
            # The error line itself was the exception line (KeyError-less Node/Java output).
            return self._frame_first(text)
        if EXCEPTION.match(text) and not text.startswith("Exception in thread "):
            # log4j/logback: the error line, then the exception it logged. (An uncaught
            # "Exception in thread" is a trace of its own, not the previous line's.)
            self.header = self.head[0]
            self.cause = _strip_cause(text)
            self.state = "exc"
            return TAKE
        return STOP

    def _become(self, language: str, state: str) -> None:
        self.language, self.state = language, state

    def _frame_first(self, text: str) -> int:
        if _JAVA_FILE.search(text):
            self._become(JAVA, "java-frames")
        else:
            self._become(NODE, "node")
        self.frames += 1
        return TAKE

    def _exc(self, text: str) -> int:
        """After an exception line of unknown language: frames decide Java or Node."""
        if _JAVA_FRAME.match(text) or _NODE_FRAME.match(text):
            return self._frame_first(text)
        return STOP

    # --- Python -------------------------------------------------------------------------
    def _py_frames(self, text: str) -> int | str:
        if text.startswith((" ", "\t")):
            if text.lstrip().startswith("File "):
                self.frames += 1
            inner = _DECORATION.sub("", text)
            if text.lstrip().startswith(("|", "+")) and EXCEPTION.match(inner) and not self.cause:
                self.cause = inner.strip()  # an exception group's first sub-exception
            return TAKE
        if not text.strip():
            return "pending"
        self.cause = text.strip()
        self.state = "py-after"
        return TAKE

    def _py_after(self, text: str) -> int | str:
        if not text.strip():
            self.state = "py-blank"
            return "pending"
        if text.startswith((" ", "\t")):
            return TAKE  # the exception message goes on, indented
        return STOP

    def _py_blank(self, text: str) -> int | str:
        if not text.strip():
            return "pending"
        if text.strip() in _PY_CHAIN:
            self.state = "py-chain"
            return TAKE
        return STOP

    def _py_chain(self, text: str) -> int | str:
        if not text.strip():
            return "pending"
        if _PY_HEAD in text:
            self.state = "py-frames"
            return TAKE
        return STOP

    # --- Java ---------------------------------------------------------------------------
    def _java_exc(self, text: str) -> int:
        if _JAVA_FRAME.match(text) or text.lstrip().startswith("Caused by: "):
            self.state = "java-frames"
            return self._java_frames(text)
        return STOP

    def _java_frames(self, text: str) -> int:
        stripped = text.lstrip()
        if _JAVA_FRAME.match(text):
            self.frames += 1
            return TAKE
        if stripped.startswith("Caused by: "):
            self.cause = _strip_cause(stripped)
            return TAKE
        if stripped.startswith("Suppressed: "):
            return TAKE
        return STOP

    # --- Node ---------------------------------------------------------------------------
    def _node(self, text: str) -> int | str:
        if _NODE_FRAME.match(text):
            self.frames += 1
            if text.rstrip().endswith("{"):
                self.state = "node-object"
            return TAKE
        if text.startswith((" ", "\t")):
            return TAKE  # [cause]: ..., an error's extra properties
        if not text.strip():
            return "pending"
        if text.startswith("Node.js v"):
            return END
        if text.startswith("Emitted 'error' event"):
            return TAKE  # then the frames of where it was emitted
        if text.rstrip() == "}":
            return TAKE
        return STOP

    def _node_object(self, text: str) -> int:
        if text.rstrip() == "}":
            self.state = "node"
        return TAKE

    # --- Go -----------------------------------------------------------------------------
    def _go(self, text: str) -> int | str:
        if not text.strip():
            return "pending"
        if _GO_GOROUTINE.match(text):
            self.frames += 1
            return TAKE
        if text.startswith("exit status "):
            return END
        if _GO_HEAD.match(text) and self.cause:
            return STOP  # another panic at the top level: a trace of its own (a re-panic is indented)
        if _GO_OTHER.match(text) or _GO_FUNC.match(text) or _GO_HEAD.match(text):
            if _GO_HEAD.match(text):
                self.cause = text.strip()
            return TAKE
        return STOP

    # --- Ruby ---------------------------------------------------------------------------
    def _ruby(self, text: str) -> int | str:
        if not text.strip():
            return "pending"  # error_highlight: a blank line, the code, its carets
        if text.startswith(("\t", " ")):
            if text.lstrip().startswith("from "):
                self.frames += 1
            return TAKE
        return STOP

    # --- PostgreSQL ---------------------------------------------------------------------
    def _pg(self, text: str) -> int:
        return TAKE if _PG_DETAIL.search(text) else STOP


def _strip_cause(text: str) -> str:
    text = text.strip()
    if text.startswith("Caused by: "):
        text = text[len("Caused by: ") :]
    match = re.match(r'Exception in thread "[^"]*" ', text)
    return text[match.end() :] if match else text
