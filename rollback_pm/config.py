"""Settings: every option defined once, resolved once into typed, frozen values with their sources.

Precedence, highest first: command-line flags > ``ROLLBACK_PM_<NAME>`` env >
Woodpecker ``CI_*`` and plugin ``PLUGIN_<NAME>`` env > TOML file > defaults.

The ``Settings`` fields below are the single source for flags, env names, plugin settings,
the config file keys and the generated documentation (``rollback-pm config options``).
Every value is converted and checked here, at load, before anything runs: durations
become float seconds, sizes int bytes, times aware UTC datetimes, lists tuples, and a value
out of range is a ``ConfigError`` (exit 2) naming the flag, variable or file key it came
from. Nothing downstream parses a setting's text or reads the environment.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Iterable, Mapping
from dataclasses import Field, dataclass, field, fields, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit

from rollback_pm.errors import ConfigError, UsageError
from rollback_pm.log import mask_url_passwords
from rollback_pm.timeutil import EARLIEST, iso, parse_ts, utcnow

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

DEFAULT_CONFIG_FILE = Path("/etc/rollback-pm/config.toml")
# Where a repository keeps its postmortems (the azaion procedure's folder), relative to the checkout.
REPO_DRAFTS_DIR = "_docs/06_metrics"
MIB = 1024 * 1024
HOUR = 3600.0
DAY = 86400.0

Kind = Literal["str", "int", "float", "bool", "bytes", "list", "pairs", "path", "duration", "time", "since"]
Tracker = Literal["file", "jira", "gitea", "forgejo", "none"]
LogFormat = Literal["console", "json"]
LogLevel = Literal["debug", "info", "warning", "error"]
SmokeFormat = Literal["jsonl", "junit", "tap"]
Severity = Literal["Critical", "High", "Medium", "Low"]

DURATION_HELP = "a number with an optional unit s, m, h or d: 90, 90s, 15m, 1.5h, 1d; no unit means seconds"
SIZE_HELP = "bytes, or a number with a unit: 500k, 64MiB, 1.5GB, 1GiB"
TIME_HELP = "ISO 8601 such as 2026-05-13T08:47:21Z, or epoch seconds"


@dataclass(frozen=True)
class Since:
    """``--since``: a duration back from now, or a point in time."""

    ago: float | None = None  # seconds
    at: datetime | None = None

    def start(self, now: datetime) -> datetime:
        if self.at is not None:
            return self.at
        return now - timedelta(seconds=self.ago or 0.0)

    def __str__(self) -> str:
        if self.at is not None:
            return iso(self.at) or ""
        return f"{format_duration(self.ago or 0.0)} ago"


@dataclass(frozen=True)
class Option:
    """One setting: its name, kind, default, documentation and the range it accepts."""

    name: str
    default: Any
    kind: Kind
    help: str
    secret: bool = False
    ci: tuple[str, ...] = ()  # Woodpecker CI_* variables that provide it
    choices: tuple[Any, ...] = ()
    # inclusive bounds by kind: hours (float), a count (int), bytes, seconds (duration, since)
    low: float | None = None
    high: float | None = None
    ahead: float = DAY  # a time (or since's time form) may lie this many seconds past now

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return f"ROLLBACK_PM_{self.name.upper()}"

    @property
    def plugin(self) -> str:
        return f"PLUGIN_{self.name.upper()}"

    def allowed(self) -> str:
        """The values this option accepts, in words (for errors, --help and the docs)."""
        if self.choices:
            return "one of " + ", ".join(str(c) for c in self.choices)
        if self.kind == "duration":
            return f"a duration from {format_duration(self.low or 0)} to {format_duration(self.high or 0)} ({DURATION_HELP})"
        if self.kind == "since":
            return (
                f"a duration up to {format_duration(self.high or 0)} ({DURATION_HELP}), "
                f"or an ISO 8601 time such as 2026-05-13T08:47:21Z between {EARLIEST.date()} and now + "
                f"{format_duration(self.ahead)}"
            )
        if self.kind == "time":
            return f"a time between {EARLIEST.date()} and now + {format_duration(self.ahead)} ({TIME_HELP})"
        if self.kind == "bytes":
            return f"a size from {format_size(self.low or 0)} to {format_size(self.high or 0)} ({SIZE_HELP})"
        if self.kind == "int":
            return f"a whole number from {self.low:g} to {self.high:g}"
        if self.kind == "float":
            return f"a number from {self.low:g} to {self.high:g}"
        if self.kind == "bool":
            return "true or false (1/0, yes/no, on/off)"
        if self.kind == "pairs":
            return "Name=Value pairs, comma-separated"
        if self.name.endswith("_url"):
            return "a URL such as https://host.example.com/path"
        return "text"

    def describe(self) -> str:
        """Help text plus the accepted range where there is one."""
        if self.kind in ("duration", "since", "time", "bytes", "int", "float") or self.choices:
            return f"{self.help} Allowed: {self.allowed()}."
        return self.help


def _opt(
    default: Any,
    kind: Kind,
    help: str,
    *,
    secret: bool = False,
    ci: tuple[str, ...] = (),
    choices: tuple[Any, ...] = (),
    low: float | None = None,
    high: float | None = None,
) -> Any:
    """A Settings field that is also an option (typed ``Any`` so each field keeps its own annotation)."""
    spec = {"kind": kind, "help": help, "secret": secret, "ci": ci, "choices": choices, "low": low, "high": high}
    if isinstance(default, Mapping):  # unhashable, so dataclasses want a factory
        return field(default_factory=lambda: default, metadata={"option": spec})
    return field(default=default, metadata={"option": spec})


@dataclass(frozen=True)
class Settings:
    """Effective settings, typed and frozen, with where each value came from.

    ``for_environment(env)`` gives the settings with that environment's ``[environments.<env>]``
    table applied; it is the only way per-environment values are resolved.
    """

    # where things go
    state_dir: Path = _opt(Path("/var/lib/rollback-pm"), "path", "Ledger, ticket files and outbox live here.")
    evidence_dir: Path = _opt(Path("/var/log/azaion"), "path", "Where evidence bundles are written.")
    drafts_dir: Path | None = _opt(
        None,
        "path",
        f"Where drafts go (default: <repo_dir>/{REPO_DRAFTS_DIR} if it exists, else <state_dir>/drafts).",
    )
    repo_dir: Path | None = _opt(
        None,
        "path",
        "A git checkout holding both SHAs, for suspect changes (default: current directory in CI).",
        ci=("CI_WORKSPACE",),
    )
    # what happened
    service: str | None = _opt(None, "str", "The service that was rolled back.", ci=("CI_REPO_NAME",))
    environment: str = _opt(
        "production", "str", "The environment (production, staging, ...).", ci=("CI_PIPELINE_DEPLOY_TARGET",)
    )
    deploy_sha: str | None = _opt(None, "str", "Full SHA of the bad deploy.", ci=("CI_COMMIT_SHA",))
    rollback_sha: str | None = _opt(None, "str", "Full SHA restored by the rollback.")
    prev_sha: str | None = _opt(
        None, "str", "Previous pipeline's commit (last-resort rollback SHA).", ci=("CI_PREV_COMMIT_SHA",)
    )
    pipeline_number: str | None = _opt(
        None, "str", "Pipeline number (part of the incident's identity).", ci=("CI_PIPELINE_NUMBER",)
    )
    pipeline_url: str | None = _opt(None, "str", "Link to the pipeline.", ci=("CI_PIPELINE_URL",))
    repo: str | None = _opt(None, "str", "owner/name of the repository.", ci=("CI_REPO",))
    deployed_at: datetime | None = _opt(None, "time", "When the bad version went live.")
    mitigated_at: datetime | None = _opt(None, "time", "When the rollback finished (default now).")
    severity: Severity | None = _opt(
        None, "str", "The incident's severity (default by environment).", choices=("Critical", "High", "Medium", "Low")
    )
    detected_by: str | None = _opt(
        None, "str", "alert, smoke test, user report or operator (default from smoke steps)."
    )
    deploy_ticket: str | None = _opt(None, "str", "The deploy's ticket key or URL.")
    owner: str | None = _opt(None, "str", "Postmortem owner (the on-call engineer).")
    # smoke
    smoke_report: tuple[str, ...] = _opt((), "list", "Smoke report file(s): JSON lines, JUnit XML or TAP.")
    smoke_format: SmokeFormat | None = _opt(
        None, "str", "The smoke report format (default: detected).", choices=("jsonl", "junit", "tap")
    )
    smoke_step_pattern: str = _opt("smoke", "str", "Woodpecker steps whose names match this regex are smoke steps.")
    # selection and collection
    label: tuple[str, ...] = _opt((), "list", "Select containers by label K=V (repeatable, ANDed).")
    name: str | None = _opt(None, "str", "Select containers whose full name matches this regex.")
    compose_project: str | None = _opt(None, "str", "Select the containers of this compose project.")
    container: tuple[str, ...] = _opt((), "list", "Select containers by id or name (repeatable).")
    all_states: bool = _opt(True, "bool", "Include exited and dead containers (the crashed ones matter most).")
    swarm_service: tuple[str, ...] = _opt(
        (),
        "list",
        "Select Swarm services by name or id (repeatable): every task's logs, from every node (talk to a manager).",
    )
    stack: str | None = _opt(
        None, "str", "Select every service of this Swarm stack (label com.docker.stack.namespace)."
    )
    watch_lookback: float = _opt(
        HOUR,
        "duration",
        "rollback-pm watch with no checkpoint yet: also handle Swarm rollbacks that started this long ago.",
        low=0,
        high=366 * DAY,
    )
    since: Since | None = _opt(
        None, "since", "Only logs since a duration back from now, or since a time.", high=3650 * DAY
    )
    max_bytes_per_container: int = _opt(
        64 * MIB, "bytes", "Keep at most this many (newest) log bytes per container.", low=0, high=1024**4
    )
    max_total_bytes: int | None = _opt(None, "bytes", "Keep at most this many log bytes in all.", low=0, high=1024**5)
    timeout: float = _opt(120.0, "duration", "How long the evidence collection may take in all.", low=1, high=DAY)
    min_free_mb: int = _opt(
        256, "int", "Refuse to collect below this many MiB free in the evidence dir.", low=0, high=1024**3
    )
    docker_host: str | None = _opt(None, "str", "Docker engine address (default: DOCKER_HOST or the local socket).")
    # drafts
    template: str = _opt("azaion", "str", "Postmortem template: azaion, blameless, sev, finance, or a file path.")
    # tickets
    tracker: Tracker = _opt("file", "str", "Ticket backend.", choices=("file", "jira", "gitea", "forgejo", "none"))
    # No CI default: Woodpecker's CI_FORGE_URL is the forge's address, and a Jira token sent
    # there would leak. forge_url carries it, used only by the gitea/forgejo trackers.
    tracker_url: str | None = _opt(None, "str", "Tracker base URL (gitea/forgejo default: forge_url).")
    forge_url: str | None = _opt(
        None,
        "str",
        "The forge Woodpecker builds from; the gitea/forgejo tracker's URL unless tracker_url is set.",
        ci=("CI_FORGE_URL",),
    )
    tracker_token: str | None = _opt(None, "str", "Tracker API token.", secret=True)
    token_file: Path | None = _opt(None, "path", "File holding the tracker token.")
    jira_email: str | None = _opt(None, "str", "Jira Cloud account email (with an API token).")
    jira_project: str | None = _opt(None, "str", "Jira project key.")
    jira_api: int | None = _opt(
        None, "int", "Jira REST API version: 3 (Cloud) or 2 (Data Center); default by URL.", choices=(2, 3)
    )
    jira_issue_type: str = _opt("Task", "str", "Jira issue type.")
    jira_components: tuple[str, ...] = _opt((), "list", "Jira components to set on the ticket.")
    jira_priorities: Mapping[str, str] = _opt(
        MappingProxyType({}),
        "pairs",
        "Severity to Jira priority, e.g. Critical=Highest,High=High (default: the same names, Critical=Highest).",
    )
    forge_assignees: tuple[str, ...] = _opt((), "list", "Forge users to assign the issue to.")
    followup_owners: Mapping[str, str] = _opt(
        MappingProxyType({}),
        "pairs",
        "Action-row owner to tracker user for follow-up tickets, e.g. @ana=ana.k,Bo Chen=bchen (Jira Cloud: "
        "an account id; Data Center: a user name; forge: a login); owners not listed are looked up in the tracker.",
    )
    tracker_timeout: float = _opt(10.0, "duration", "How long one tracker request may take.", low=0.001, high=HOUR)
    tracker_retry_budget: float = _opt(
        60.0, "duration", "How long all retries of one tracker operation may take.", low=0, high=DAY
    )
    forge_repo: str | None = _opt(
        None, "str", "owner/name of the forge repository for issues (default: CI_REPO).", ci=("CI_REPO",)
    )
    forge_type: str | None = _opt(
        None,
        "str",
        "The kind of forge Woodpecker builds from (gitea, forgejo, github, ...); forge_url is the gitea/forgejo "
        "tracker's URL only for a gitea or forgejo forge.",
        ci=("CI_FORGE_TYPE",),
    )
    open_pr: bool = _opt(
        False, "bool", "Also commit the draft to postmortem/<id> and open a pull request (gitea/forgejo)."
    )
    woodpecker_url: str | None = _opt(None, "str", "Woodpecker server URL.", ci=("CI_SYSTEM_URL",))
    woodpecker_token: str | None = _opt(
        None, "str", "Woodpecker API token (read pipeline steps and logs).", secret=True
    )
    # deadlines
    deadline_hours: float = _opt(
        24.0, "float", "Hours after mitigation the postmortem is due; 0 means no deadline.", low=0, high=24 * 366
    )
    warn_before: float = _opt(4 * HOUR, "duration", "Warn this long before the deadline.", low=0, high=366 * DAY)
    webhook_url: str | None = _opt(None, "str", "Slack-compatible webhook for overdue postmortems.", secret=True)
    # logging
    log_format: LogFormat = _opt("console", "str", "Log format.", choices=("console", "json"))
    log_level: LogLevel = _opt("warning", "str", "Log level.", choices=("debug", "info", "warning", "error"))

    # provenance and per-environment tables: not options
    sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    overrides: Mapping[str, Mapping[str, tuple[Any, str]]] = field(default_factory=dict, repr=False, compare=False)

    def source(self, name: str) -> str:
        return self.sources.get(name, "default")

    def for_environment(self, environment: str) -> Settings:
        """These settings with ``[environments.<environment>]`` applied. A table overrides only
        values that came from the file or the defaults: a flag or a variable still wins."""
        table = self.overrides.get(environment, {})
        changes = {
            name: value
            for name, (value, _) in table.items()
            if self.source(name) in ("file", "default") or self.source(name).startswith("config [environments.")
        }
        if not changes:
            return self
        sources = {**self.sources, **{name: table[name][1] for name in changes}}
        return replace(self, **changes, sources=sources)

    def rows(self) -> list[tuple[str, str, str]]:
        """(name, shown value, source) with secrets masked, for `config show`."""
        rows = []
        for option in OPTIONS:
            value = getattr(self, option.name)
            # A password inside a URL (tracker_url, docker_host, ...) is masked too.
            shown = "***" if option.secret and value else mask_url_passwords(show(option, value))
            rows.append((option.name, shown, self.source(option.name)))
        return rows


def _default(f: Field[Any]) -> Any:
    return f.default_factory() if callable(f.default_factory) else f.default


OPTIONS: tuple[Option, ...] = tuple(
    Option(name=f.name, default=_default(f), **f.metadata["option"]) for f in fields(Settings) if "option" in f.metadata
)
BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}
# Extra keys allowed in the TOML file besides the options: per-environment tables.
_TABLE_KEYS = {"environments"}


# -- the value grammars ---------------------------------------------------------------------

_NUMBER = r"(\d+(?:\.\d+)?)"
_DURATION = re.compile(rf"^\s*{_NUMBER}\s*([smhd]?)\s*$", re.IGNORECASE)
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE = re.compile(rf"^\s*{_NUMBER}\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": MIB,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1024**4,
}


class _Invalid(Exception):
    """A value that does not parse, or parses out of range; the caller names where it came from."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise _Invalid("is not a number")
    try:
        number = Decimal(str(value).strip()) if isinstance(value, str) else Decimal(value)
    except (InvalidOperation, ValueError, TypeError):
        raise _Invalid("is not a number") from None
    if not number.is_finite():
        raise _Invalid("is not a finite number")
    return number


def _within(number: Decimal, low: float | None, high: float | None) -> None:
    if (low is not None and number < Decimal(str(low))) or (high is not None and number > Decimal(str(high))):
        raise _Invalid("is out of range")


def duration_seconds(value: Any, low: float | None = 0, high: float | None = None) -> float:
    """Seconds from 90, 90s, 15m, 1.5h, 1d (or a number of seconds from the TOML file)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = _decimal(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise _Invalid("is not a duration")
        seconds = Decimal(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]
    _within(seconds, low, high)
    return float(seconds)


def size_bytes(value: Any, low: float | None = 0, high: float | None = None) -> int:
    """Bytes from 67108864, 500k, 64MiB, 1.5GB (or a number of bytes from the TOML file)."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = Decimal(value)
    else:
        match = _SIZE.match(str(value))
        unit = (match.group(2) or "").lower() if match else ""
        if not match or unit not in _SIZE_UNITS:
            raise _Invalid("is not a size")
        number = Decimal(match.group(1)) * _SIZE_UNITS[unit]
    _within(number, low, high)
    return int(number)


def timestamp(value: Any, now: datetime | None = None, ahead: float = DAY) -> datetime:
    """An aware UTC datetime between 2000-01-01 and now + ``ahead`` seconds."""
    try:
        parsed = parse_ts(value) if isinstance(value, (str, int, float, datetime)) else None
    except (UsageError, OverflowError, ValueError, OSError):
        parsed = None
    if parsed is None or isinstance(value, bool):
        raise _Invalid("is not a time")
    if parsed < EARLIEST or parsed > (now or utcnow()) + timedelta(seconds=ahead):
        raise _Invalid("is out of range")
    return parsed


def since_value(value: Any, high: float | None = None, now: datetime | None = None, ahead: float = DAY) -> Since:
    """A duration back from now, or a point in time."""
    if isinstance(value, Since):
        return value
    if (isinstance(value, str) and _DURATION.match(value)) or isinstance(value, (int, float)):
        return Since(ago=duration_seconds(value, 0, high))
    return Since(at=timestamp(value, now, ahead))


def format_duration(seconds: float) -> str:
    """The shortest exact form: 4h, 90m, 1.5s (the grammar reads it back)."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return format(Decimal(repr(float(seconds))).normalize(), "f") + "s"


def format_size(value: float) -> str:
    for unit, size in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", MIB), ("KiB", 1024)):
        if value >= size and value % size == 0:
            return f"{int(value // size)}{unit}"
    return f"{int(value)}"


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise _Invalid("is not true/false")


def _items(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, (list, tuple)):
        return tuple(str(v).strip() for v in value if str(v).strip())
    raise _Invalid("is not a list")


def _pairs(value: Any) -> Mapping[str, str]:
    pairs: dict[str, str] = {}
    for item in _items(value):
        key, sep, val = item.partition("=")
        if not sep or not key.strip() or not val.strip():
            raise _Invalid(f"has {item!r}, which is not Name=Value")
        pairs[key.strip().capitalize()] = val.strip()
    return MappingProxyType(pairs)


def _parse(option: Option, value: Any) -> Any:
    kind = option.kind
    if kind == "list":
        return _items(value)
    if kind == "pairs":
        return _pairs(value)
    if kind == "bool":
        return _bool(value)
    if kind in ("int", "float"):
        number = _decimal(value)
        if kind == "int" and number != number.to_integral_value():
            raise _Invalid("is not a whole number")
        if not option.choices:
            _within(number, option.low, option.high)
        return int(number) if kind == "int" else float(number)
    if kind == "bytes":
        return size_bytes(value, option.low, option.high)
    if kind == "duration":
        return duration_seconds(value, option.low, option.high)
    if kind == "time":
        return timestamp(value, ahead=option.ahead)
    if kind == "since":
        return since_value(value, option.high, ahead=option.ahead)
    if kind == "path":
        if not isinstance(value, (str, os.PathLike)):
            raise _Invalid("is not a path")
        return Path(value).expanduser()
    if isinstance(value, (dict, list)):
        raise _Invalid("is not text")
    if option.name.endswith("_url"):
        return _url(str(value))
    return str(value)


def _url(text: str) -> str:
    """A URL urllib can take apart: a bad IPv6 bracket or port would otherwise fail deep inside
    a request or a draft's link."""
    try:
        urlsplit(text).port  # noqa: B018 - reading it is the check
    except ValueError as exc:
        raise _Invalid(f"is not a well-formed URL ({exc})") from None
    return text


_SURROGATE = re.compile("[\ud800-\udfff]")


def undecodable(text: str) -> bool:
    """Whether ``text`` came from bytes that are not UTF-8: argv and the environment are decoded
    with surrogateescape, and the lone surrogates that leaves cannot be stored, logged or sent."""
    return not text.isascii() and _SURROGATE.search(text) is not None


def _decodable(value: Any) -> None:
    texts = value if isinstance(value, (list, tuple)) else [value]
    if any(isinstance(t, str) and undecodable(t) for t in texts):
        raise _Invalid("holds bytes that are not UTF-8 text")


def _choice(option: Option, value: Any) -> Any:
    for choice in option.choices:
        if value == choice or (isinstance(value, str) and isinstance(choice, str) and value.lower() == choice.lower()):
            return choice
    return None


def convert(option: Option, value: Any, where: str) -> Any:
    """The typed value of ``option`` given as ``value`` by ``where`` (a flag, variable or file key)."""
    if value is None:
        return None
    try:
        _decodable(value)
        parsed = _parse(option, value)
    except _Invalid as exc:
        shown = "(a secret, not shown)" if option.secret else mask_url_passwords(repr(value))
        raise ConfigError(
            f"{option.name} {shown} {exc.problem} (given by {where}); allowed: {option.allowed()}"
        ) from None
    if option.choices:
        chosen = _choice(option, parsed)
        if chosen is None:
            choices = ", ".join(str(c) for c in option.choices)
            raise ConfigError(f"{option.name} must be one of {choices}, not {value!r} (given by {where})")
        return chosen
    return parsed


def show(option: Option, value: Any) -> str:
    """A value as `config show` prints it (and the grammar reads it back)."""
    if value is None:
        return "-"
    if option.kind == "list":
        return ",".join(value) or "-"
    if option.kind == "pairs":
        return ",".join(f"{k}={v}" for k, v in value.items()) or "-"
    if option.kind == "duration":
        return format_duration(value)
    if option.kind == "bytes":
        return format_size(value)
    if option.kind == "time":
        return iso(value) or "-"
    return str(value)


# -- loading --------------------------------------------------------------------------------


def _where(option: Option, source: str, path: Path | None) -> str:
    if source == "flag":
        return option.flag
    if source == "file":
        return f"key {option.name} in {path}"
    if source.startswith("config [environments."):
        return f"key {option.name} in {source.removeprefix('config ')} of {path}"
    return source.split(" ", 1)[-1]  # env ROLLBACK_PM_X -> ROLLBACK_PM_X, plugin PLUGIN_X, ci CI_X


MAX_CONFIG_BYTES = 1024 * 1024  # a config file is a few KB


def _read_file(path: Path, explicit: bool) -> dict[str, Any]:
    """The TOML file's table: at most 1 MiB of a regular file or /dev/null (never a pipe to block on)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"config file {path} does not exist; fix --config / ROLLBACK_PM_CONFIG") from None
        return {}
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISCHR(info.st_mode)):  # /dev/null means "no file"
        raise ConfigError(f"config file {path} is not a regular file; fix --config / ROLLBACK_PM_CONFIG")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"config file {path} is larger than {MAX_CONFIG_BYTES // (1024 * 1024)} MiB; "
                "is --config / ROLLBACK_PM_CONFIG the right file?"
            )
        data = tomllib.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(
            f"config file {path} nests arrays or tables deeper than rollback-pm reads; "
            "a config needs no more than [environments.<env>] tables"
        ) from None
    except ValueError:  # tomllib reads no integer of more than 4300 digits
        raise ConfigError(f"config file {path} holds a number of more than 4300 digits; no setting needs one") from None
    for key in data:
        norm = key.replace("-", "_")
        if norm not in BY_NAME and norm not in _TABLE_KEYS:
            raise ConfigError(f"config file {path}: unknown key {key!r}; see `rollback-pm config options`")
    return {k.replace("-", "_"): v for k, v in data.items()}


def _environment_tables(raw: Any, path: Path) -> dict[str, dict[str, tuple[Any, str]]]:
    """[environments.<env>] tables, each value converted now (source: the table)."""
    if raw is None:
        return {}
    example = "e.g. [environments.staging] deadline_hours = 0"
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path}: [environments] must be a table of tables ({example}), not {raw!r}")
    tables: dict[str, dict[str, tuple[Any, str]]] = {}
    for env_name, table in raw.items():
        if not isinstance(table, dict):
            raise ConfigError(
                f"config file {path}: [environments.{env_name}] must be a table of settings ({example}), not {table!r}"
            )
        converted: dict[str, tuple[Any, str]] = {}
        for key, value in table.items():
            norm = key.replace("-", "_")
            if norm not in BY_NAME:
                raise ConfigError(f"config file {path}: unknown key {key!r} in [environments.{env_name}]")
            source = f"config [environments.{env_name}]"
            option = BY_NAME[norm]
            converted[norm] = (convert(option, value, _where(option, source, path)), source)
        tables[str(env_name)] = converted
    return tables


def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_path: Path | str | None = None,
) -> Settings:
    """Merge every layer and check every value. ``flags`` holds only options the user actually gave."""
    env = os.environ if env is None else env
    flags = {k: v for k, v in (flags or {}).items() if v is not None and v not in ((), [])}
    explicit_file = config_path or env.get("ROLLBACK_PM_CONFIG")
    path = Path(explicit_file) if explicit_file else DEFAULT_CONFIG_FILE
    file_data = _read_file(path, bool(explicit_file))
    overrides = _environment_tables(file_data.pop("environments", None), path)

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        layers: list[tuple[str, Any]] = [
            ("flag", flags.get(option.name)),
            (f"env {option.env}", env.get(option.env)),
            (f"plugin {option.plugin}", env.get(option.plugin)),
            *((f"ci {ci}", env.get(ci)) for ci in option.ci),
            ("file", file_data.get(option.name)),
        ]
        for source, raw in layers:
            if raw is not None and raw != "":
                values[option.name] = convert(option, raw, _where(option, source, path))
                sources[option.name] = source
                break
        else:
            values[option.name] = option.default
            sources[option.name] = "default"
    if values["repo_dir"] is None and env.get("CI"):
        # In a pipeline step the working directory is the checkout.
        values["repo_dir"], sources["repo_dir"] = Path.cwd(), "ci CI (the working directory)"
    if values["tracker_token"] is None and values["token_file"] is not None:
        values["tracker_token"] = read_token_file(values["token_file"])
        sources["tracker_token"] = f"token file {values['token_file']}"
    _register_secrets(values, overrides)
    return Settings(**values, sources=sources, overrides=overrides)


def _register_secrets(values: Mapping[str, Any], overrides: Mapping[str, Mapping[str, tuple[Any, str]]]) -> None:
    from rollback_pm.log import register_secret

    for option in OPTIONS:
        if option.secret:
            register_secret(values[option.name])
            for table in overrides.values():
                if option.name in table:
                    register_secret(table[option.name][0])


def read_token_file(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"token file {path} cannot be read ({exc.strerror}); fix --token-file") from None
    if not token:
        raise ConfigError(f"token file {path} is empty; fix --token-file")
    return token


def options_markdown(options: Iterable[Option] = OPTIONS) -> str:
    """The option reference table, generated from the Settings fields (docs and `config options`)."""
    lines = [
        "| option | flag | env | Woodpecker setting | CI variable | default | what |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in options:
        default = show(o, o.default) if o.default not in (None, (), {}) else "-"
        lines.append(
            f"| `{o.name}` | `{o.flag}` | `{o.env}` | `{o.name}` (`{o.plugin}`) | "
            f"{', '.join(f'`{c}`' for c in o.ci) or '-'} | {default} | {o.describe()}"
            f"{' (secret)' if o.secret else ''} |"
        )
    return "\n".join(lines) + "\n"
