"""Counts every fuzz case by target and how it ended: parsed, a typed error, or an internal error."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class Tally:
    cases: Counter[str] = field(default_factory=Counter)
    parsed: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    internal: Counter[str] = field(default_factory=Counter)

    def run(
        self, target: str, call: Callable[[], T], allowed: type[BaseException] | tuple[type[BaseException], ...]
    ) -> T | BaseException:
        """``call()``'s result, or the allowed (typed) error it raised; any other error counts
        as internal and propagates, failing the test with its falsifying example."""
        self.cases[target] += 1
        try:
            result = call()
        except allowed as exc:
            self.refused[target] += 1
            return exc
        except Exception:
            self.internal[target] += 1
            raise
        self.parsed[target] += 1
        return result


TALLY = Tally()


def is_error(value: Any) -> bool:
    return isinstance(value, BaseException)
