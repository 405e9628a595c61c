"""The JSON the ledger stores (an incident's containers, commits, changed files, warnings and
Swarm facts; the facts parked with evidence of ``--phase collect``; the signal reports), read
back checked.

Anything can end up in a SQLite column: a hand edit, a disk error, an older version. Each
value is checked against the dataclass it becomes, field by field, so a damaged record is
a ``Damaged`` error saying which field is wrong, never a TypeError deep in a template.
Unknown keys are ignored (a newer version may have written them).
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import MISSING, fields, is_dataclass
from datetime import datetime
from typing import Any, TypeVar

from rollback_pm.errors import UsageError
from rollback_pm.models import ChangedFile, Commit, ContainerState, SwarmFacts
from rollback_pm.timeutil import parse_ts

T = TypeVar("T")
MAX_FACTS_CHARS = 64 * 1024 * 1024
_LISTS: dict[str, type] = {"containers": ContainerState, "commits": Commit, "changed_files": ChangedFile}


class Damaged(ValueError):
    """A stored value that is not what the ledger wrote; the message says which and why."""


def _json(text: Any, what: str) -> Any:
    if text is None or text == "":
        return {}
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str):
        raise Damaged(f"{what} is not JSON text")
    if len(text) > MAX_FACTS_CHARS:
        raise Damaged(f"{what} is larger than {MAX_FACTS_CHARS // (1024 * 1024)} MiB")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise Damaged(f"{what} is not valid JSON") from None


def _value(value: Any, hint: Any, what: str) -> Any:
    """``value`` as the annotation ``hint`` wants it (datetimes parsed), or Damaged."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        problems = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _value(value, option, what)
            except Damaged as exc:
                problems.append(str(exc))
        raise Damaged(problems[0] if problems else f"{what} is {type(value).__name__}")
    if hint is datetime:
        if not isinstance(value, str):
            raise Damaged(f"{what} is {type(value).__name__}, not a time")
        try:
            parsed = parse_ts(value)
        except (UsageError, ValueError, OverflowError):
            raise Damaged(f"{what} is {value[:40]!r}, not an ISO 8601 time") from None
        return parsed
    if hint is bool:
        if not isinstance(value, bool):
            raise Damaged(f"{what} is {type(value).__name__}, not true/false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Damaged(f"{what} is {type(value).__name__}, not a whole number")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Damaged(f"{what} is {type(value).__name__}, not a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise Damaged(f"{what} is {type(value).__name__}, not text")
        return value
    if origin is list or hint is list:
        if not isinstance(value, list):
            raise Damaged(f"{what} is {type(value).__name__}, not a list")
        args = typing.get_args(hint)
        return [_value(item, args[0], f"{what}[{n}]") for n, item in enumerate(value)] if args else value
    if isinstance(hint, type) and is_dataclass(hint):
        return build(hint, value, what)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise Damaged(f"{what} is {type(value).__name__}, not an object")
        return value
    if isinstance(hint, type) and is_dataclass(hint):  # a nested one (Swarm facts' versions)
        return build(hint, value, what)
    return value  # Any


def build(cls: type[T], data: Any, what: str) -> T:
    """An instance of the dataclass ``cls`` from stored ``data``, every field checked."""
    if not isinstance(data, dict):
        raise Damaged(f"{what} is {type(data).__name__}, not an object")
    assert is_dataclass(cls)
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                raise Damaged(f"{what} has no {f.name!r}")
            continue
        kwargs[f.name] = _value(data[f.name], hints[f.name], f"{what}.{f.name}")
    return cls(**kwargs)


def incident_facts(text: Any) -> dict[str, Any]:
    """An incident's ``facts_json`` as objects: containers, commits, changed_files, warnings."""
    data = _json(text, "facts_json")
    if not isinstance(data, dict):
        raise Damaged(f"facts_json is {type(data).__name__}, not an object")
    facts: dict[str, Any] = {
        name: [build(cls, item, f"{name}[{n}]") for n, item in enumerate(_list(data, name))]
        for name, cls in _LISTS.items()
    }
    facts["warnings"] = _value(data.get("warnings") or [], list[str], "warnings")
    facts["started_at_source"] = _value(data.get("started_at_source"), str | None, "started_at_source")
    facts["swarm"] = _swarm(data)
    return facts


def _swarm(data: dict[str, Any]) -> SwarmFacts | None:
    value = data.get("swarm")
    return build(SwarmFacts, value, "swarm") if value is not None else None


def raw_incident_facts(text: Any) -> dict[str, Any]:
    """``facts_json`` as stored, once it checks out (Damaged otherwise): for merging."""
    incident_facts(text)
    data: dict[str, Any] = _json(text, "facts_json")
    return data


def pending_facts(text: Any) -> dict[str, Any]:
    """Facts parked with ``--phase collect`` evidence: ``{"containers": [dict, ...]}`` (and,
    parked by the Swarm hook, ``"swarm": {...}``), checked."""
    data = _json(text, "pending facts")
    if not isinstance(data, dict):
        raise Damaged(f"pending facts are {type(data).__name__}, not an object")
    for n, item in enumerate(_list(data, "containers")):
        build(ContainerState, item, f"containers[{n}]")
    _swarm(data)
    return data


def json_object(text: Any, what: str) -> dict[str, Any]:
    """Stored JSON text that must hold an object (Damaged otherwise)."""
    data = _json(text, what)
    if not isinstance(data, dict):
        raise Damaged(f"{what} is {type(data).__name__}, not an object")
    return data


def text_list(text: Any, what: str) -> list[str]:
    """A stored JSON list of text (a failure signature's error templates), checked."""
    data = _json(text, what) if text not in (None, "") else []
    checked: list[str] = _value(data, list[str], what)
    return checked


def swarm_facts(data: dict[str, Any]) -> SwarmFacts | None:
    """The Swarm facts in checked ``pending_facts``."""
    return _swarm(data)


def _list(data: dict[str, Any], name: str) -> list[Any]:
    value = data.get(name) or []
    if not isinstance(value, list):
        raise Damaged(f"{name} is {type(value).__name__}, not a list")
    return value
