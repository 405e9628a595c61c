"""Settings: one place that defines every option, and where each value came from.

Precedence, highest first: command-line flags > ``ROLLBACK_PM_<NAME>`` env >
Woodpecker ``CI_*`` and plugin ``PLUGIN_<NAME>`` env > TOML file > defaults.

The option table below is the single source for flags, env names, plugin settings,
the config file keys and the generated documentation (``rollback-pm config options``).
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollback_pm.errors import ConfigError
from rollback_pm.log import mask_url_passwords

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

DEFAULT_CONFIG_FILE = Path("/etc/rollback-pm/config.toml")
MIB = 1024 * 1024


@dataclass(frozen=True)
class Option:
    name: str
    default: Any
    kind: str  # str | int | float | bool | bytes | list | path | duration
    help: str
    secret: bool = False
    ci: tuple[str, ...] = ()  # Woodpecker CI_* variables that provide it


OPTIONS: tuple[Option, ...] = (
    # where things go
    Option("state_dir", Path("/var/lib/rollback-pm"), "path", "Ledger, ticket files and outbox live here."),
    Option("evidence_dir", Path("/var/log/azaion"), "path", "Where evidence bundles are written."),
    Option(
        "drafts_dir",
        None,
        "path",
        "Where drafts go (default: <repo_dir>/_docs/06_metrics if it exists, else <state_dir>/drafts).",
    ),
    Option(
        "repo_dir",
        None,
        "path",
        "A git checkout holding both SHAs, for suspect changes (default: current directory in CI).",
        ci=("CI_WORKSPACE",),
    ),
    # what happened
    Option("service", None, "str", "The service that was rolled back.", ci=("CI_REPO_NAME",)),
    Option(
        "environment",
        "production",
        "str",
        "The environment (production, staging, ...).",
        ci=("CI_PIPELINE_DEPLOY_TARGET",),
    ),
    Option("deploy_sha", None, "str", "Full SHA of the bad deploy.", ci=("CI_COMMIT_SHA",)),
    Option("rollback_sha", None, "str", "Full SHA restored by the rollback."),
    Option(
        "prev_sha", None, "str", "Previous pipeline's commit (last-resort rollback SHA).", ci=("CI_PREV_COMMIT_SHA",)
    ),
    Option(
        "pipeline_number", None, "str", "Pipeline number (part of the incident's identity).", ci=("CI_PIPELINE_NUMBER",)
    ),
    Option("pipeline_url", None, "str", "Link to the pipeline.", ci=("CI_PIPELINE_URL",)),
    Option("repo", None, "str", "owner/name of the repository.", ci=("CI_REPO",)),
    Option("deployed_at", None, "str", "When the bad version went live (ISO 8601)."),
    Option("mitigated_at", None, "str", "When the rollback finished (ISO 8601; default now)."),
    Option("severity", None, "str", "Critical, High, Medium or Low (default by environment)."),
    Option("detected_by", None, "str", "alert, smoke test, user report or operator (default from smoke steps)."),
    Option("deploy_ticket", None, "str", "The deploy's ticket key or URL."),
    Option("owner", None, "str", "Postmortem owner (the on-call engineer)."),
    # smoke
    Option("smoke_report", [], "list", "Smoke report file(s): JSON lines, JUnit XML or TAP."),
    Option("smoke_format", None, "str", "jsonl, junit or tap (default: detected)."),
    Option("smoke_step_pattern", "smoke", "str", "Woodpecker steps whose names match this regex are smoke steps."),
    # selection and collection
    Option("label", [], "list", "Select containers by label K=V (repeatable, ANDed)."),
    Option("name", None, "str", "Select containers whose full name matches this regex."),
    Option("compose_project", None, "str", "Select the containers of this compose project."),
    Option("container", [], "list", "Select containers by id or name (repeatable)."),
    Option("all_states", True, "bool", "Include exited and dead containers (the crashed ones matter most)."),
    Option("since", None, "str", "Only logs since a duration (15m, 2h) or a timestamp."),
    Option("max_bytes_per_container", 64 * MIB, "bytes", "Keep at most this many (newest) log bytes per container."),
    Option("max_total_bytes", None, "bytes", "Keep at most this many log bytes in all."),
    Option("timeout", 120.0, "float", "Seconds the evidence collection may take in all."),
    Option("min_free_mb", 256, "int", "Refuse to collect below this much free space in the evidence dir."),
    Option("docker_host", None, "str", "Docker engine address (default: DOCKER_HOST or the local socket)."),
    # drafts
    Option("template", "azaion", "str", "Postmortem template: azaion, blameless, sev, finance, or a file path."),
    # tickets
    Option("tracker", "file", "str", "Ticket backend: file, jira, gitea, forgejo or none."),
    # No CI default: Woodpecker's CI_FORGE_URL is the forge's address, and a Jira token sent
    # there would leak. forge_url carries it, used only by the gitea/forgejo trackers.
    Option("tracker_url", None, "str", "Tracker base URL (gitea/forgejo default: forge_url)."),
    Option(
        "forge_url",
        None,
        "str",
        "The forge Woodpecker builds from; the gitea/forgejo tracker's URL unless tracker_url is set.",
        ci=("CI_FORGE_URL",),
    ),
    Option("tracker_token", None, "str", "Tracker API token.", secret=True),
    Option("token_file", None, "path", "File holding the tracker token."),
    Option("jira_email", None, "str", "Jira Cloud account email (with an API token)."),
    Option("jira_project", None, "str", "Jira project key."),
    Option("jira_api", None, "int", "Jira REST API version: 3 (Cloud) or 2 (Data Center); default by URL."),
    Option("jira_issue_type", "Task", "str", "Jira issue type."),
    Option("jira_components", [], "list", "Jira components to set on the ticket."),
    Option(
        "jira_priorities",
        [],
        "list",
        "Severity to Jira priority, e.g. Critical=Highest,High=High (default: the same names, Critical=Highest).",
    ),
    Option("forge_assignees", [], "list", "Forge users to assign the issue to."),
    Option("tracker_timeout", 10.0, "float", "Seconds one tracker request may take."),
    Option("tracker_retry_budget", 60.0, "float", "Seconds all retries of one tracker operation may take."),
    Option(
        "forge_repo", None, "str", "owner/name of the forge repository for issues (default: CI_REPO).", ci=("CI_REPO",)
    ),
    Option("forge_type", None, "str", "gitea or forgejo (default: CI_FORGE_TYPE).", ci=("CI_FORGE_TYPE",)),
    Option(
        "open_pr", False, "bool", "Also commit the draft to postmortem/<id> and open a pull request (gitea/forgejo)."
    ),
    Option("woodpecker_url", None, "str", "Woodpecker server URL.", ci=("CI_SYSTEM_URL",)),
    Option("woodpecker_token", None, "str", "Woodpecker API token (read pipeline steps and logs).", secret=True),
    # deadlines
    Option("deadline_hours", 24.0, "float", "Hours after mitigation the postmortem is due."),
    Option("warn_before", "4h", "duration", "Warn this long before the deadline."),
    Option("webhook_url", None, "str", "Slack-compatible webhook for overdue postmortems.", secret=True),
    # logging
    Option("log_format", "console", "str", "console or json."),
    Option("log_level", "warning", "str", "debug, info, warning or error."),
)

BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}
# Extra keys allowed in the TOML file besides the options: per-environment tables.
_TABLE_KEYS = {"environments"}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
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
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_bytes(value: Any, what: str) -> int:
    """64MiB, 1G, 500k, or a plain number of bytes."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    unit = (match.group(2) or "").lower() if match else ""
    if not match or unit not in _SIZE_UNITS:
        raise ConfigError(f"{what}: {value!r} is not a size (e.g. 67108864, 64MiB, 1GiB)")
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


def parse_duration(value: Any, what: str) -> float:
    """Seconds from 90, 90s, 15m, 4h, 1d."""
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ConfigError(f"{what}: {value!r} is not a duration (e.g. 90s, 15m, 4h)")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def _convert(option: Option, value: Any, source: str) -> Any:
    what = f"{option.name} (from {source})"
    if value is None:
        return None
    try:
        if option.kind == "list":
            if isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            return [str(v) for v in value]
        if option.kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ConfigError(f"{what}: {value!r} is not true/false")
        if option.kind == "int":
            return int(value)
        if option.kind == "float":
            return float(value)
        if option.kind == "bytes":
            return parse_bytes(value, what)
        if option.kind == "duration":
            return parse_duration(value, what)
        if option.kind == "path":
            return Path(str(value)).expanduser()
        return str(value)
    except (TypeError, ValueError, OverflowError):  # int(inf) overflows
        raise ConfigError(f"{what}: {value!r} is not a valid {option.kind}") from None


class Settings:
    """Effective settings with per-value provenance; attribute access by option name."""

    def __init__(self, values: dict[str, Any], sources: dict[str, str], environments: dict[str, dict[str, Any]]):
        self._values = values
        self._sources = sources
        self.environments = environments

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def source(self, name: str) -> str:
        return self._sources[name]

    def for_environment(self, name: str, environment: str) -> Any:
        """A per-environment override from the file's [environments.<env>] table, else the value."""
        env_table = self.environments.get(environment, {})
        if name in env_table and self._sources[name] in ("file", "default"):
            return _convert(BY_NAME[name], env_table[name], f"config [environments.{environment}]")
        return self._values[name]

    def deadline_for(self, environment: str) -> float:
        """Hours after mitigation a postmortem in this environment is due (0: no deadline)."""
        return float(self.for_environment("deadline_hours", environment) or 0.0)

    def rows(self) -> list[tuple[str, str, str]]:
        """(name, shown value, source) with secrets masked, for `config show`."""
        rows = []
        for option in OPTIONS:
            value = self._values[option.name]
            # A password inside a URL (tracker_url, docker_host, ...) is masked too.
            shown = "***" if option.secret and value else mask_url_passwords(_show(value))
            rows.append((option.name, shown, self._sources[option.name]))
        return rows


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(value) or "-"
    return str(value)


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


def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_path: Path | str | None = None,
) -> Settings:
    """Merge every layer. ``flags`` holds only options the user actually gave."""
    env = os.environ if env is None else env
    flags = {k: v for k, v in (flags or {}).items() if v is not None and v not in ((), [])}
    explicit_file = config_path or env.get("ROLLBACK_PM_CONFIG")
    file_data = _read_file(Path(explicit_file) if explicit_file else DEFAULT_CONFIG_FILE, bool(explicit_file))
    environments = file_data.pop("environments", {}) or {}
    if not isinstance(environments, dict):
        raise ConfigError("config file: [environments] must be a table of tables")
    for env_name, table in environments.items():
        if not isinstance(table, dict):
            raise ConfigError(f"config file: [environments.{env_name}] must be a table of settings, not {table!r}")
        for key in table:
            if key not in BY_NAME:
                raise ConfigError(f"config file: unknown key {key!r} in [environments.{env_name}]")

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        upper = option.name.upper()
        layers: list[tuple[str, Any]] = [
            ("flag", flags.get(option.name)),
            (f"env ROLLBACK_PM_{upper}", env.get(f"ROLLBACK_PM_{upper}")),
            (f"plugin PLUGIN_{upper}", env.get(f"PLUGIN_{upper}")),
            *((f"ci {ci}", env.get(ci)) for ci in option.ci),
            ("file", file_data.get(option.name)),
        ]
        for source, raw in layers:
            if raw is not None and raw != "":
                values[option.name] = _convert(option, raw, source)
                sources[option.name] = source
                break
        else:
            values[option.name] = option.default
            sources[option.name] = "default"
    if values["tracker_token"] is None and values["token_file"] is not None:
        values["tracker_token"] = read_token_file(values["token_file"])
        sources["tracker_token"] = f"token file {values['token_file']}"
    _validate(values)
    from rollback_pm.log import register_secret

    for option in OPTIONS:
        if option.secret and values[option.name]:
            register_secret(str(values[option.name]))
    return Settings(values, sources, environments)


def read_token_file(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"token file {path} cannot be read ({exc.strerror}); fix --token-file") from None
    if not token:
        raise ConfigError(f"token file {path} is empty; fix --token-file")
    return token


_CHOICES = {
    "tracker": ("file", "jira", "gitea", "forgejo", "none"),
    "log_format": ("console", "json"),
    "log_level": ("debug", "info", "warning", "error"),
    "smoke_format": ("jsonl", "junit", "tap"),
}


def _validate(values: dict[str, Any]) -> None:
    for name, choices in _CHOICES.items():
        value = values[name]
        if value is not None and value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    if values["jira_api"] not in (None, 2, 3):
        raise ConfigError(f"jira_api must be 2 or 3, not {values['jira_api']!r}")
    for name in ("timeout", "deadline_hours"):
        if values[name] is not None and values[name] < 0:
            raise ConfigError(f"{name} must not be negative")


def options_markdown(options: Iterable[Option] = OPTIONS) -> str:
    """The option reference table, generated from OPTIONS (used by docs and `config options`)."""
    lines = [
        "| option | flag | env | Woodpecker setting | CI variable | default | what |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in options:
        default = "-" if o.default in (None, []) else str(o.default)
        lines.append(
            f"| `{o.name}` | `--{o.name.replace('_', '-')}` | `ROLLBACK_PM_{o.name.upper()}` | "
            f"`{o.name}` (`PLUGIN_{o.name.upper()}`) | {', '.join(f'`{c}`' for c in o.ci) or '-'} | "
            f"{default} | {o.help}{' (secret)' if o.secret else ''} |"
        )
    return "\n".join(lines) + "\n"
