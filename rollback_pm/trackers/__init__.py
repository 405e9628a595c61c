"""Tracker backends by name. Heavy backends are imported only when chosen."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rollback_pm.errors import ConfigError
from rollback_pm.trackers.base import Capabilities, TicketSpec, Tracker

__all__ = ["NAMES", "Capabilities", "TicketSpec", "Tracker", "make_tracker"]


def _file(settings: Any) -> Tracker:
    from rollback_pm.trackers.file import FileTracker

    return FileTracker(settings.state_dir)


def _none(settings: Any) -> Tracker:
    from rollback_pm.trackers.none import NoneTracker

    return NoneTracker()


def _need(settings: Any, *names: str) -> None:
    missing = [n for n in names if not getattr(settings, n)]
    if missing:
        flags = ", ".join(f"--{n.replace('_', '-')} / ROLLBACK_PM_{n.upper()}" for n in missing)
        raise ConfigError(f"tracker {settings.tracker} needs {flags}")


def _jira(settings: Any) -> Tracker:
    from rollback_pm.trackers.jira import JiraTracker

    if not settings.tracker_url:
        # Never the forge's CI_FORGE_URL: the Jira credentials would go to the forge host.
        raise ConfigError(
            "tracker jira needs its URL: set --tracker-url / ROLLBACK_PM_TRACKER_URL "
            "(e.g. https://acme.atlassian.net or your Jira Data Center address)"
        )
    _need(settings, "jira_project", "tracker_token")
    return JiraTracker(
        settings.tracker_url,
        settings.jira_project,
        settings.tracker_token,
        email=settings.jira_email,
        api_version=settings.jira_api,
        issue_type=settings.jira_issue_type,
        priority_map=dict(settings.jira_priorities) or None,
        components=tuple(settings.jira_components),
        timeout=settings.tracker_timeout,
        retry_budget_s=settings.tracker_retry_budget,
    )


def forge_tracker_url(settings: Any) -> str | None:
    """The gitea/forgejo tracker's URL: tracker_url, else the forge Woodpecker builds from
    (CI_FORGE_URL) when that forge is a Gitea or Forgejo (CI_FORGE_TYPE), so the token only
    ever goes to a host that speaks this API."""
    if settings.tracker_url:
        return str(settings.tracker_url)
    forge_type = (getattr(settings, "forge_type", None) or "").lower()
    if settings.forge_url and forge_type in ("", "gitea", "forgejo"):
        return str(settings.forge_url)
    if settings.forge_url:
        raise ConfigError(
            f"tracker {settings.tracker} needs its URL: the pipeline's forge is {forge_type} "
            f"(CI_FORGE_TYPE), not a Gitea/Forgejo, so CI_FORGE_URL is not used; "
            "set --tracker-url / ROLLBACK_PM_TRACKER_URL"
        )
    return None


def _forge(settings: Any) -> Tracker:
    from rollback_pm.trackers.gitea import GiteaTracker

    url = forge_tracker_url(settings)
    if not url:
        raise ConfigError(
            f"tracker {settings.tracker} needs the forge URL: set --tracker-url / ROLLBACK_PM_TRACKER_URL "
            "(in a Woodpecker step: CI_FORGE_URL)"
        )
    _need(settings, "forge_repo", "tracker_token")
    kind = settings.tracker if settings.tracker in ("gitea", "forgejo") else "gitea"
    return GiteaTracker(
        url,
        settings.forge_repo,
        settings.tracker_token,
        kind=kind,
        assignees=tuple(settings.forge_assignees),
        timeout=settings.tracker_timeout,
        retry_budget_s=settings.tracker_retry_budget,
    )


_REGISTRY: dict[str, Callable[[Any], Tracker]] = {
    "file": _file,
    "none": _none,
    "jira": _jira,
    "gitea": _forge,
    "forgejo": _forge,
}
NAMES = tuple(_REGISTRY)


def make_tracker(settings: Any) -> Tracker:
    """The backend named by settings.tracker, configured from settings."""
    try:
        factory = _REGISTRY[settings.tracker]
    except KeyError:
        raise ConfigError(f"unknown tracker {settings.tracker!r}; choose one of {', '.join(NAMES)}") from None
    return factory(settings)
