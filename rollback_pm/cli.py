"""rollback-pm: turn a production rollback into a complete, on-time postmortem.

Wiring only: each click command gathers its flags, loads Settings and calls its function in
``rollback_pm.commands``, whose return value is the exit code. Library errors become
one-line messages and the documented exit codes here: 0 done, 1 failed, 2 usage or bad
input, 3 done but degraded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import click

from rollback_pm import __version__
from rollback_pm.config import BY_NAME, DAY, Option, Settings, convert, load_settings, undecodable
from rollback_pm.errors import EXIT_FAILED, ConfigError, RollbackPmError
from rollback_pm.interrupt import unwind_on_sigterm
from rollback_pm.log import configure, get_logger, mask

log = get_logger(__name__)


_METAVARS = {
    "int": "N",
    "float": "NUMBER",
    "bytes": "SIZE",
    "path": "PATH",
    "duration": "DURATION",
    "list": "VALUE",
    "pairs": "K=V,...",
    "time": "TIME",
    "since": "DURATION|TIME",
}


class Typed(click.ParamType):  # type: ignore[type-arg]  # generic only in newer click stubs
    """A flag that is not a setting but takes a setting's kind of value, with the same grammar and range."""

    def __init__(self, option: Option) -> None:
        self.option = option
        self.name = option.kind

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str | None:
        return {"time": "TIME", "since": "DURATION|TIME", "float": "NUMBER"}.get(self.option.kind)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return convert(self.option, value, param.opts[0] if param else self.option.flag)
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)


class Utf8Text(click.ParamType):  # type: ignore[type-arg]
    """Free text (an incident id, a service name), refused when it holds bytes that are not UTF-8."""

    name = "text"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and undecodable(value):
            self.fail(f"{value!r} holds bytes that are not UTF-8 text", param, ctx)
        return value


TEXT = Utf8Text()
NOW = Typed(Option("now", None, "time", "Judge the clock as of this time."))
# A deadline may lie as far ahead as deadline_hours allows (366 days), from a mitigation up to a day ahead.
DEADLINE = Typed(Option("deadline", None, "time", "The postmortem's deadline.", ahead=367 * DAY))
SINCE = Typed(BY_NAME["since"])
# A report's period may lie ahead of today (a planning view): a year at most.
PERIOD_START = Typed(replace(BY_NAME["since"], ahead=366 * DAY))
PERIOD_END = Typed(Option("now", None, "time", "The end of the period.", ahead=366 * DAY))
HOURS = Typed(BY_NAME["deadline_hours"])


def setting_options(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add `--<name>` flags for these options, straight from the option table."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for name in reversed(names):
            option = BY_NAME[name]
            flag = f"--{name.replace('_', '-')}"
            kwargs: dict[str, Any] = {
                "default": None,
                "help": option.describe(),
                "show_envvar": False,
                "metavar": _METAVARS.get(option.kind, "TEXT"),
            }
            if option.kind == "list":
                kwargs.update(multiple=True, default=())
            elif option.kind == "bool":
                flag = f"{flag}/--no-{name.replace('_', '-')}"
            func = click.option(flag, name, **kwargs)(func)
        return func

    return decorate


def settings_from(ctx: click.Context, flags: dict[str, Any]) -> Settings:
    """Load Settings from the group's --config plus this command's flags."""
    root = ctx.find_root()
    merged = {**root.obj["flags"], **{k: v for k, v in flags.items() if k in BY_NAME}}
    settings = load_settings(merged, config_path=root.obj["config"])
    configure(settings.log_format, settings.log_level)
    return settings


def one_line(text: str) -> str:
    """A message as one printable line: a control or format character that came with a value
    (a newline or NEL in a path, an escape sequence, a right-to-left override) is shown escaped,
    never acted on by the terminal or a log reader."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class Group(click.Group):
    """Turns expected failures into a message and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with unwind_on_sigterm():  # SIGTERM unwinds like Ctrl-C: temp files removed, locks released
                return super().invoke(ctx)
        except RollbackPmError as exc:
            click.echo(f"rollback-pm: {one_line(mask(str(exc)))}", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("rollback-pm: interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:  # an unexpected bug: say so plainly, keep secrets out
            log.debug("unexpected error", exc_info=True)
            click.echo(
                f"rollback-pm: internal error: {type(exc).__name__}: {one_line(mask(str(exc)))}. "
                "Rerun with --log-level debug and report it.",
                err=True,
            )
            ctx.exit(EXIT_FAILED)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="rollback-pm")
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML config file (default /etc/rollback-pm/config.toml when present).",
)
@setting_options("state_dir", "log_format", "log_level")
@click.pass_context
def cli(ctx: click.Context, config: str | None, **flags: Any) -> None:
    """Turn every production rollback into a complete, on-time postmortem.

    Exit codes: 0 done, 1 failed, 2 usage or bad input, 3 done but degraded.
    """
    configure()  # stderr, warnings only, until the command's settings say otherwise
    ctx.obj = {"config": config, "flags": flags}


SELECTION = ("label", "name", "compose_project", "container", "all_states", "swarm_service", "stack")
COLLECTION = (
    "since",
    "max_bytes_per_container",
    "max_total_bytes",
    "timeout",
    "min_free_mb",
    "evidence_dir",
    "docker_host",
)
FACTS = (
    "service",
    "environment",
    "deploy_sha",
    "rollback_sha",
    "pipeline_number",
    "pipeline_url",
    "repo",
    "deployed_at",
    "mitigated_at",
    "severity",
    "detected_by",
    "deploy_ticket",
    "owner",
    "smoke_report",
    "smoke_format",
    "smoke_step_pattern",
    "repo_dir",
    "woodpecker_url",
)
TICKETS = (
    "tracker",
    "tracker_url",
    "token_file",
    "jira_email",
    "jira_project",
    "jira_api",
    "jira_issue_type",
    "jira_components",
    "jira_priorities",
    "forge_repo",
    "forge_assignees",
    "followup_owners",
    "tracker_timeout",
    "tracker_retry_budget",
    "open_pr",
    "deadline_hours",
)


@cli.command()
@click.option(
    "--phase",
    type=click.Choice(["both", "collect", "finalize"]),
    default="both",
    show_default=True,
    help="collect before the rollback replaces containers, finalize after it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@setting_options(*SELECTION, *COLLECTION, *FACTS, "template", "drafts_dir", *TICKETS)
@click.pass_context
def hook(ctx: click.Context, phase: str, as_json: bool, **flags: Any) -> None:
    """Run every stage for one rollback: collect -> record -> draft -> ticket.

    Called by the pipeline's rollback step. Safe to retry: the same rollback updates the
    same incident, draft and ticket. Exits 3 when done but degraded (evidence missing,
    draft not written, ticket queued in the outbox).
    """
    from rollback_pm.commands.hook import hook as command

    ctx.exit(command(settings_from(ctx, flags), phase=phase, as_json=as_json))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the manifest summary as JSON.")
@setting_options(*SELECTION, *COLLECTION)
@click.pass_context
def collect(ctx: click.Context, as_json: bool, **flags: Any) -> None:
    """Snapshot the selected containers' logs and inspect JSON into the evidence dir.

    Select with --label K=V (ANDed), --name REGEX (full-name match), --compose-project P
    or --container ID. Exited containers are included: the crashed ones matter most.
    """
    from rollback_pm.commands.collect import collect as command

    ctx.exit(command(settings_from(ctx, flags), as_json=as_json))


@cli.command()
@click.option(
    "--once",
    is_flag=True,
    help="Handle what is pending since the last checkpoint (and every service in a rollback state), then exit.",
)
@setting_options(
    "swarm_service",
    "stack",
    "watch_lookback",
    *COLLECTION,
    "environment",
    "severity",
    "owner",
    "template",
    "drafts_dir",
    *TICKETS,
)
@click.pass_context
def watch(ctx: click.Context, once: bool, **flags: Any) -> None:
    """Follow a Swarm manager's events; record every rollback Swarm makes.

    When a service update ends in a rollback (update_config failure_action: rollback, or
    docker service rollback), runs the hook for that service: evidence at rollback_started,
    before Swarm replaces the failed tasks; incident, draft and ticket at rollback_completed.
    One incident per rollback across restarts (it resumes from its checkpoint in the state
    dir) and across watchers. Stops cleanly on SIGTERM. --swarm-service / --stack watch only
    those services. Exit 3 (with --once) when a rollback was recorded degraded.
    """
    from rollback_pm.commands.watch import watch as command

    ctx.exit(command(settings_from(ctx, flags), once=once))


@cli.command()
@click.argument("incident_id", type=TEXT)
@click.option("--force", is_flag=True, help="Overwrite a draft a human edited (keeps a .bak first).")
@setting_options("template", "drafts_dir", "repo_dir")
@click.pass_context
def draft(ctx: click.Context, incident_id: str, force: bool, **flags: Any) -> None:
    """(Re)render the postmortem draft of INCIDENT_ID with the ledger's current facts.

    Never overwrites a draft a human has edited unless --force is given.
    """
    from rollback_pm.commands.draft import draft as command

    ctx.exit(command(settings_from(ctx, flags), incident_id, force=force, template=flags.get("template")))


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print findings as JSON.")
@click.option("--now", type=NOW, default=None, help="Judge dates as of this time (ISO 8601).")
@click.option(
    "--deadline", type=DEADLINE, default=None, help="The postmortem's deadline (ISO 8601); later is a finding."
)
@click.pass_context
def lint(ctx: click.Context, files: tuple[str, ...], as_json: bool, now: Any, deadline: Any) -> None:
    """Check that postmortems are complete.

    Finds placeholders left, empty sections, unfilled header fields, "human error" as the
    root cause, prevention rows without a ticket key and bad target dates. Exit 0 clean,
    1 findings, 2 unreadable input.
    """
    from rollback_pm.commands.lint import lint as command

    ctx.exit(command(files, as_json=as_json, now=now, deadline=deadline))


@cli.group()
def ticket() -> None:
    """Open, flush and read back tickets."""


@ticket.command("open")
@click.argument("incident_id", type=TEXT)
@setting_options(*TICKETS)
@click.pass_context
def ticket_open(ctx: click.Context, incident_id: str, **flags: Any) -> None:
    """Open (or find) the ticket of INCIDENT_ID. Exits 3 if it had to be queued."""
    from rollback_pm.commands.ticket import ticket_open as command

    ctx.exit(command(settings_from(ctx, flags), incident_id))


@ticket.command("flush")
@setting_options(*TICKETS)
@click.pass_context
def ticket_flush(ctx: click.Context, **flags: Any) -> None:
    """Send what the outbox holds, in order. Exits 3 if something is still queued."""
    from rollback_pm.commands.ticket import ticket_flush as command

    ctx.exit(command(settings_from(ctx, flags)))


@ticket.command("status")
@click.argument("incident_id", type=TEXT)
@setting_options(*TICKETS)
@click.pass_context
def ticket_status(ctx: click.Context, incident_id: str, **flags: Any) -> None:
    """Read the ticket's state back from the tracker and cache it in the ledger."""
    from rollback_pm.commands.ticket import ticket_status as command

    ctx.exit(command(settings_from(ctx, flags), incident_id))


@cli.group()
def followups() -> None:
    """The postmortems' action rows as tickets: created, linked, read back."""


@followups.command("sync")
@click.argument("incident_id", required=False)
@click.option("--dry-run", is_flag=True, help="Create, change and write nothing; say what would be done.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@setting_options(*(n for n in TICKETS if n != "open_pr"))
@click.pass_context
def followups_sync(ctx: click.Context, incident_id: str | None, dry_run: bool, as_json: bool, **flags: Any) -> None:
    """Open a ticket for each action row with an owner, an action and a target date.

    Reads the draft of INCIDENT_ID (default: every open incident, and every done one whose
    draft was edited since) the way lint does: azaion Prevention, blameless and SEV action
    items, finance corrective actions. Each new ticket is labelled rollback-pm-<id> and
    followup, due on the target date, assigned when the owner maps to a tracker user, linked
    to the incident's ticket; its key goes into the row's Ticket cell unless the draft changed
    meanwhile (then it is commented on the incident's ticket). Reruns create nothing new; an
    edited row updates its ticket. Then reads every follow-up's state back. check-deadlines
    runs this too. Exit 0 done, 3 degraded (each row or draft that failed is named).
    """
    from rollback_pm.commands.followups import followups_sync as command

    ctx.exit(command(settings_from(ctx, flags), incident_id, dry_run=dry_run, as_json=as_json))


@cli.group()
def incidents() -> None:
    """What the ledger knows."""


@incidents.command("list")
@click.option("--service", default=None, type=TEXT, help="Only this service.")
@click.option("--env", "environment", default=None, type=TEXT, help="Only this environment.")
@click.option("--status", type=click.Choice(["open", "done"]), default=None, help="Only this status.")
@click.option("--since", type=SINCE, default=None, help="Only incidents recorded since a duration (7d) or timestamp.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def incidents_list(
    ctx: click.Context, service: str | None, environment: str | None, status: str | None, since: Any, as_json: bool
) -> None:
    """List incidents, newest first."""
    from rollback_pm.commands.incidents import incidents_list as command

    ctx.exit(
        command(
            settings_from(ctx, {}),
            service=service,
            environment=environment,
            status=status,
            since=since,
            as_json=as_json,
        )
    )


@incidents.command("show")
@click.argument("incident_id", type=TEXT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def incidents_show(ctx: click.Context, incident_id: str, as_json: bool) -> None:
    """Show every fact recorded for INCIDENT_ID (a unique prefix works)."""
    from rollback_pm.commands.incidents import incidents_show as command

    ctx.exit(command(settings_from(ctx, {}), incident_id, as_json=as_json))


@cli.command("mark-good")
@setting_options("service", "environment")
@click.option("--sha", required=True, type=TEXT, help="Full SHA of the deploy that passed its smoke test.")
@click.pass_context
def mark_good(ctx: click.Context, sha: str, **flags: Any) -> None:
    """Remember the last good SHA of a service and environment (after a good deploy).

    A later rollback uses it as the rollback SHA when nothing better is known.
    """
    from rollback_pm.commands.mark_good import mark_good as command

    ctx.exit(command(settings_from(ctx, flags), sha))


@cli.command("check-deadlines")
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (id, service, env, due, state, ticket, draft, owner)."
)
@click.option(
    "--now", type=NOW, default=None, help="Judge the clock as of this time (ISO 8601), for tests and dry runs."
)
@click.option("--dry-run", is_flag=True, help="Send nothing, change nothing; say what would be sent.")
@click.option("--quiet", "-q", is_flag=True, help="Print only what this run did (for cron mail).")
@click.option("--hours", type=HOURS, default=None, help="Same as --deadline-hours.")
@click.option(
    "--webhook", default=None, help="Same as --webhook-url (prefer the env or config file: a flag is visible in ps)."
)
@setting_options(*(n for n in TICKETS if n != "open_pr"), "warn_before", "webhook_url")
@click.pass_context
def check_deadlines(
    ctx: click.Context,
    as_json: bool,
    now: Any,
    dry_run: bool,
    quiet: bool,
    hours: float | None,
    webhook: str | None,
    **flags: Any,
) -> None:
    """Warn before, and escalate once after, the postmortem deadline (run by cron).

    Flushes the ticket outbox, then for every open incident: done when its draft passes
    lint or its ticket is resolved; else ok, due-soon (warning comment on the ticket) or
    overdue (comment, postmortem-overdue label, webhook), each sent once. Then runs
    `followups sync` and does the same for each open follow-up's target date (comment and
    followup-overdue label on its ticket, webhook). Exit 0 nothing overdue, 1 something
    overdue, 3 the check was degraded (says which incidents).
    """
    from rollback_pm.commands.check_deadlines import check_deadlines as command

    if hours is not None:
        flags["deadline_hours"] = hours
    if webhook is not None:
        flags["webhook_url"] = webhook
    ctx.exit(command(settings_from(ctx, flags), now=now, dry_run=dry_run, quiet=quiet, as_json=as_json))


@cli.group("ledger")
def ledger_group() -> None:
    """Check the ledger against the files around it; rebuild it when it is lost."""


@ledger_group.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@setting_options("drafts_dir", "repo_dir", "evidence_dir")
@click.pass_context
def ledger_check(ctx: click.Context, as_json: bool, **flags: Any) -> None:
    """SQLite integrity, schema version, and drafts, ticket files and evidence the ledger does
    not know (or knows but are gone). Changes nothing. Exit 0 clean, 1 problems found."""
    from rollback_pm.commands.ledger import ledger_check as command

    ctx.exit(command(settings_from(ctx, flags), as_json=as_json))


@ledger_group.command("rebuild")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--force", is_flag=True, help="Rebuild even a ledger that passes SQLite's checks.")
@setting_options("drafts_dir", "repo_dir", "evidence_dir")
@click.pass_context
def ledger_rebuild(ctx: click.Context, as_json: bool, force: bool, **flags: Any) -> None:
    """Recover incidents from drafts, ticket files and evidence manifests into a fresh ledger.

    The old ledger is moved aside (never deleted). Exit 0 when every file found was used,
    3 when some could not be attributed (they are listed).
    """
    from rollback_pm.commands.ledger import ledger_rebuild as command

    ctx.exit(command(settings_from(ctx, flags), force=force, as_json=as_json))


@cli.command()
@click.option(
    "--since",
    type=PERIOD_START,
    default="90d",
    show_default=True,
    help="Rollbacks since a duration back from now (90d, 12h) or a time (ISO 8601).",
)
@click.option("--service", default=None, type=TEXT, help="Only this service.")
@click.option("--env", "environment", default=None, type=TEXT, help="Only this environment.")
@click.option(
    "--html", "html_to", default=None, metavar="FILE", help="Write the report as one self-contained HTML file."
)
@click.option(
    "--json",
    "json_to",
    is_flag=False,
    flag_value="-",
    default=None,
    metavar="[FILE]",
    help="Write the figures as JSON to FILE, or to stdout when no FILE follows.",
)
@click.option(
    "--csv",
    "csv_to",
    is_flag=False,
    flag_value="-",
    default=None,
    metavar="[FILE]",
    help="Write one row per incident as CSV to FILE, or to stdout when no FILE follows.",
)
@click.option(
    "--now", type=PERIOD_END, default=None, help="End the period and judge deadlines at this time (ISO 8601)."
)
@setting_options("deadline_hours")
@click.pass_context
def report(
    ctx: click.Context,
    since: Any,
    service: str | None,
    environment: str | None,
    html_to: str | None,
    json_to: str | None,
    csv_to: str | None,
    now: Any,
    **flags: Any,
) -> None:
    """Insights: rollbacks per week, MTTD and MTTR, postmortems on time, follow-ups, repeats.

    --html FILE writes one page that opens offline (needs the report extra:
    pip install 'rollback-pm[report]'); --json and --csv are for machines. An incident
    counts in the period by its rollback time. Exit 0 done, 2 bad input, 3 done but
    some ledger records could not be read (they are listed).
    """
    from rollback_pm.commands.report import report as command

    settings = settings_from(ctx, flags)
    ctx.exit(
        command(
            settings,
            since=since,
            until=now,
            service=service,
            environment=environment,
            html_to=html_to,
            json_to=json_to,
            csv_to=csv_to,
        )
    )


@cli.group("config")
def config_group() -> None:
    """Inspect the effective configuration."""


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def config_show(ctx: click.Context, as_json: bool) -> None:
    """Print every setting, its effective value and where it came from (secrets masked)."""
    from rollback_pm.commands.config import config_show as command

    ctx.exit(command(settings_from(ctx, {}), as_json=as_json))


@config_group.command("options")
@click.pass_context
def config_options(ctx: click.Context) -> None:
    """Print the option reference as a Markdown table (flags, env, plugin settings)."""
    from rollback_pm.commands.config import config_options as command

    ctx.exit(command())


def main() -> None:
    cli(prog_name="rollback-pm")


if __name__ == "__main__":  # pragma: no cover
    main()
