"""What the replacing (rolled-back-to) version logs anyway: the yardstick for "new".

A signal of the bad version whose template the replacing version's logs also hold is
recurring noise (a deprecation warning logged as ERROR, a flaky upstream), not the
cause; one whose template they lack is new. The baseline is those logs run through the
same extractor, so "the same" means the same signal key (kind, trace language,
template) on both sides.

The finalize phase, which runs after the rollback, feeds it the replacing containers'
recent lines, redacted like the bundle, as bundle-format bytes (``from_chunks``), a
bundle log (``from_log``) or plain text lines (``from_text``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rollback_pm.signals.scan import Scanner

_PLAIN_PREFIX = b"baseline stdout 0001-01-01T00:00:00.000000000Z "


@dataclass(frozen=True)
class Baseline:
    """The signal keys seen in the replacing version's logs, and where they came from."""

    keys: frozenset[str]
    source: str
    lines: int = 0

    def __contains__(self, key: object) -> bool:
        return key in self.keys

    @classmethod
    def from_log(cls, path: str, names: list[str] | None = None, source: str | None = None) -> Baseline:
        """From a bundle-format log file (a collection of the replacing containers)."""
        scan = Scanner(path, names).run()
        return cls._of(scan.containers.values(), source or path, scan.stats.lines)

    @classmethod
    def from_chunks(cls, chunks: Iterable[bytes], source: str) -> Baseline:
        """From bundle-format bytes (``<name> <stream> <timestamp> <text>`` lines), cut anywhere."""
        scan = Scanner(source).run(chunks)
        return cls._of(scan.containers.values(), source, scan.stats.lines)

    @classmethod
    def from_text(cls, lines: Iterable[str], source: str) -> Baseline:
        """From plain log lines without a bundle prefix (e.g. ``docker logs`` without ``-t``)."""

        def chunks() -> Iterable[bytes]:
            for line in lines:
                yield _PLAIN_PREFIX + line.rstrip("\n").replace("\n", " ").encode() + b"\n"

        return cls.from_chunks(chunks(), source)

    @classmethod
    def _of(cls, containers: Iterable[Any], source: str, lines: int) -> Baseline:
        return cls(frozenset(key for c in containers for key in c.seen), source, lines)

    def to_dict(self) -> dict[str, Any]:
        return {"keys": sorted(self.keys), "source": self.source, "lines": self.lines}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Baseline:
        return cls(frozenset(data["keys"]), data["source"], data.get("lines", 0))
