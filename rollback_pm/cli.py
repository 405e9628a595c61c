"""rollback-pm: turn a production rollback into a complete, on-time postmortem.

A thin click layer: each command gathers its flags, loads Settings, calls the library and
prints. Library errors become one-line messages and the documented exit codes:
0 done, 1 failed, 2 usage or bad input, 3 done but degraded.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import click

from rollback_pm import __version__
from rollback_pm.config import BY_NAME, DAY, Option, Settings, Since, convert, load_settings, options_markdown
from rollback_pm.errors import EXIT_DEGRADED, EXIT_FAILED, ConfigError, RollbackPmError
from rollback_pm.log import configure, get_logger, mask
from rollback_pm.timeutil import iso, to_jsonable, utcnow

log = get_logger(__name__)


_METAVARS = {"int": "N", "float": "NUMBER", "bytes": "SIZE", "path": "PATH", "duration": "DURATION", "list": "VALUE"}


class Typed(click.ParamType):
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


NOW = Typed(Option("now", None, "time", "Judge the clock as of this time."))
# A deadline may lie as far ahead as deadline_hours allows (366 days), from a mitigation up to a day ahead.
DEADLINE = Typed(Option("deadline", None, "time", "The postmortem's deadline.", ahead=367 * DAY))
SINCE = Typed(BY_NAME["since"])
# A report's period may lie ahead of today (a planning view): a year at most.
PERIOD_START = Typed(replace(BY_NAME["since"], ahead=366 * DAY))
PERIOD_END = Typed(Option("now", None, "time", "The end of the period.", ahead=366 * DAY))


def setting_options(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add `--<name>` flags for these options, straight from the option table."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for name in reversed(names):
            option = BY_NAME[name]
            flag = f"--{name.replace('_', '-')}"
            kwargs: dict[str, Any] = {
                "default": None,
                "help": option.help,
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


class Group(click.Group):
    """Turns expected failures into a message and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RollbackPmError as exc:
            click.echo(f"rollback-pm: {mask(str(exc))}", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("rollback-pm: interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:  # an unexpected bug: say so plainly, keep secrets out
            log.debug("unexpected error", exc_info=True)
            click.echo(
                f"rollback-pm: internal error: {type(exc).__name__}: {mask(str(exc))}. "
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


SELECTION = ("label", "name", "compose_project", "container", "all_states")
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
    ticket queued in the outbox).
    """
    from rollback_pm.hook import as_json as result_json
    from rollback_pm.hook import run_hook, summary_lines

    result = run_hook(settings_from(ctx, flags), phase)
    if as_json:
        click.echo(json.dumps(result_json(result), indent=2))
    else:
        for line in summary_lines(result):
            click.echo(line)
    if result.degraded:
        ctx.exit(EXIT_DEGRADED)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the manifest summary as JSON.")
@setting_options(*SELECTION, *COLLECTION)
@click.pass_context
def collect(ctx: click.Context, as_json: bool, **flags: Any) -> None:
    """Snapshot the selected containers' logs and inspect JSON into the evidence dir.

    Select with --label K=V (ANDed), --name REGEX (full-name match), --compose-project P
    or --container ID. Exited containers are included: the crashed ones matter most.
    """
    from rollback_pm.hook import collect_evidence

    bundle = collect_evidence(settings_from(ctx, flags))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "bundle": bundle.bundle_id,
                    "files": [
                        {"path": f.path, "kind": f.kind, "sha256": f.sha256, "bytes": f.bytes} for f in bundle.files
                    ],
                    "containers": [
                        {"name": c.name, "ok": c.ok, "error": c.error, "truncated": c.truncated}
                        for c in bundle.containers
                    ],
                    "partial": bundle.partial,
                },
                indent=2,
            )
        )
    else:
        click.echo(f"bundle {bundle.bundle_id}: {len(bundle.containers)} container(s)")
        for f in bundle.files:
            click.echo(f"  {f.path}")
        for c in bundle.containers:
            if not c.ok:
                click.echo(f"  missing {c.name}: {c.error}")
    if bundle.degraded:
        ctx.exit(EXIT_DEGRADED)


@cli.command()
@click.argument("incident_id")
@click.option("--force", is_flag=True, help="Overwrite a draft a human edited (keeps a .bak first).")
@setting_options("template", "drafts_dir", "repo_dir")
@click.pass_context
def draft(ctx: click.Context, incident_id: str, force: bool, **flags: Any) -> None:
    """(Re)render the postmortem draft of INCIDENT_ID with the ledger's current facts.

    Never overwrites a draft a human has edited unless --force is given.
    """
    from rollback_pm.hook import write_incident_draft
    from rollback_pm.ledger import Ledger

    settings = settings_from(ctx, flags)
    with Ledger(settings.state_dir) as ledger:
        incident = ledger.get(incident_id)
        template = flags.get("template")
        result = write_incident_draft(settings, ledger, incident, now=utcnow(), force=force, template=template)
    click.echo(f"{result.path} ({result.reason})")
    if result.backup:
        click.echo(f"previous version kept as {result.backup}")


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
    from rollback_pm.lint import lint_file

    when = now or utcnow()
    due = deadline
    findings = [f for path in files for f in lint_file(Path(path), now=when, deadline=due)]
    if as_json:
        click.echo(json.dumps([f.__dict__ for f in findings], indent=2))
    else:
        for f in findings:
            click.echo(f"{f.path}:{f.line}: {f.rule}: {f.message}")
        if not findings:
            click.echo(f"{len(files)} file(s) complete")
    ctx.exit(1 if findings else 0)


@cli.group()
def ticket() -> None:
    """Open, flush and read back tickets."""


@ticket.command("open")
@click.argument("incident_id")
@setting_options(*TICKETS)
@click.pass_context
def ticket_open(ctx: click.Context, incident_id: str, **flags: Any) -> None:
    """Open (or find) the ticket of INCIDENT_ID. Exits 3 if it had to be queued."""
    from rollback_pm.deadline import hours_for
    from rollback_pm.ledger import Ledger
    from rollback_pm.tickets import open_ticket
    from rollback_pm.trackers import make_tracker

    settings = settings_from(ctx, flags)
    with Ledger(settings.state_dir) as ledger:
        incident = ledger.get(incident_id)
        outcome = open_ticket(
            ledger,
            make_tracker(settings),
            incident,
            deadline_hours=hours_for(settings, incident.environment),
        )
    click.echo(outcome.message)
    if outcome.queued:
        ctx.exit(EXIT_DEGRADED)


@ticket.command("flush")
@setting_options(*TICKETS)
@click.pass_context
def ticket_flush(ctx: click.Context, **flags: Any) -> None:
    """Send what the outbox holds, in order. Exits 3 if something is still queued."""
    from rollback_pm.deadline import hours_for
    from rollback_pm.ledger import Ledger
    from rollback_pm.tickets import flush
    from rollback_pm.trackers import make_tracker

    settings = settings_from(ctx, flags)
    with Ledger(settings.state_dir) as ledger:
        result = flush(ledger, make_tracker(settings), deadline_hours=partial(hours_for, settings))
    for line in result.sent:
        click.echo(f"sent {line}")
    for line in result.failed:
        click.echo(f"still queued {line}")
    if not result.sent and not result.failed:
        click.echo("outbox empty")
    if result.failed:
        ctx.exit(EXIT_DEGRADED)


@ticket.command("status")
@click.argument("incident_id")
@setting_options(*TICKETS)
@click.pass_context
def ticket_status(ctx: click.Context, incident_id: str, **flags: Any) -> None:
    """Read the ticket's state back from the tracker and cache it in the ledger."""
    from rollback_pm.ledger import Ledger
    from rollback_pm.tickets import refresh_status
    from rollback_pm.trackers import make_tracker

    settings = settings_from(ctx, flags)
    with Ledger(settings.state_dir) as ledger:
        ref = refresh_status(ledger, make_tracker(settings), ledger.get(incident_id))
    click.echo(f"{ref.key} {ref.status} {ref.url}".rstrip())


@cli.group()
def incidents() -> None:
    """What the ledger knows."""


@incidents.command("list")
@click.option("--service", default=None, help="Only this service.")
@click.option("--env", "environment", default=None, help="Only this environment.")
@click.option("--status", type=click.Choice(["open", "done"]), default=None, help="Only this status.")
@click.option("--since", type=SINCE, default=None, help="Only incidents recorded since a duration (7d) or timestamp.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def incidents_list(
    ctx: click.Context,
    service: str | None,
    environment: str | None,
    status: str | None,
    since: Any,
    as_json: bool,
) -> None:
    """List incidents, newest first."""
    from rollback_pm.ledger import Ledger

    settings = settings_from(ctx, {})
    with Ledger(settings.state_dir) as ledger:
        found = ledger.list(
            service=service, environment=environment, status=status, since=since.start(utcnow()) if since else None
        )
    if as_json:
        click.echo(json.dumps([_brief(i) for i in found], indent=2))
        return
    if not found:
        click.echo("no incidents")
        return
    click.echo(
        f"{'ID':<12}  {'SERVICE':<16} {'ENV':<11} {'DEPLOY':<7} {'ROLLBACK':<8} {'MITIGATED':<20} {'STATUS':<6} TICKET"
    )
    for i in found:
        click.echo(
            f"{i.id:<12}  {i.service[:16]:<16} {i.environment[:11]:<11} {i.deploy_sha[:7]:<7} "
            f"{(i.rollback_sha or '-')[:7]:<8} {iso(i.mitigated_at) or '-':<20} {i.status:<6} "
            f"{i.ticket.key if i.ticket else '-'}"
        )


def _brief(i: Any) -> dict[str, Any]:
    return to_jsonable(
        {
            "id": i.id,
            "service": i.service,
            "environment": i.environment,
            "deploy_sha": i.deploy_sha,
            "rollback_sha": i.rollback_sha,
            "mitigated_at": i.mitigated_at,
            "status": i.status,
            "ticket": i.ticket.key if i.ticket else None,
            "draft": i.draft_path,
        }
    )


@incidents.command("show")
@click.argument("incident_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def incidents_show(ctx: click.Context, incident_id: str, as_json: bool) -> None:
    """Show every fact recorded for INCIDENT_ID (a unique prefix works)."""
    from rollback_pm.ledger import Ledger

    settings = settings_from(ctx, {})
    with Ledger(settings.state_dir) as ledger:
        i = ledger.get(incident_id)
    if as_json:
        click.echo(json.dumps(i.to_dict(), indent=2))
        return
    rows = [
        ("id", i.id),
        ("service", i.service),
        ("environment", i.environment),
        ("status", i.status),
        ("deploy sha", i.deploy_sha),
        ("rollback sha", f"{i.rollback_sha or '-'} ({i.rollback_sha_source or '-'})"),
        ("pipeline", f"{i.pipeline_number or '-'} {i.pipeline_url or ''}".rstrip()),
        ("started", iso(i.started_at) or "-"),
        ("detected", iso(i.detected_at) or "-"),
        ("mitigated", iso(i.mitigated_at) or "-"),
        ("severity", i.severity),
        ("detected by", i.detected_by),
        ("draft", i.draft_path or "-"),
        ("ticket", f"{i.ticket.key} {i.ticket.status} {i.ticket.url}" if i.ticket else "-"),
    ]
    for label_, value in rows:
        click.echo(f"{label_ + ':':<14}{value}")
    if i.smoke_steps:
        click.echo("smoke steps:")
        for s in i.smoke_steps:
            click.echo(
                f"  {s.step if s.step is not None else '-':>2} {s.status:<7} {s.name}"
                f"{': ' + s.message if s.message else ''}"
            )
    if i.evidence:
        click.echo("evidence:")
        for e in i.evidence:
            click.echo(f"  {e.path} {e.bytes} bytes sha256 {e.sha256}")
    for w in i.warnings:
        click.echo(f"warning: {w}")


@cli.command("mark-good")
@setting_options("service", "environment")
@click.option("--sha", required=True, help="Full SHA of the deploy that passed its smoke test.")
@click.pass_context
def mark_good(ctx: click.Context, sha: str, **flags: Any) -> None:
    """Remember the last good SHA of a service and environment (after a good deploy).

    A later rollback uses it as the rollback SHA when nothing better is known.
    """
    from rollback_pm.errors import UsageError
    from rollback_pm.facts.shas import validate_sha
    from rollback_pm.ledger import Ledger

    settings = settings_from(ctx, flags)
    if not settings.service:
        raise UsageError("mark-good needs --service (or ROLLBACK_PM_SERVICE)")
    good = validate_sha(sha, "--sha")
    with Ledger(settings.state_dir) as ledger:
        ledger.mark_good(settings.service, settings.environment, good)
    click.echo(f"last good {settings.service} {settings.environment}: {good}")


@cli.command("check-deadlines")
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (id, service, env, due, state, ticket, draft, owner)."
)
@click.option(
    "--now", type=NOW, default=None, help="Judge the clock as of this time (ISO 8601), for tests and dry runs."
)
@click.option("--dry-run", is_flag=True, help="Send nothing, change nothing; say what would be sent.")
@click.option("--quiet", "-q", is_flag=True, help="Print only what this run did (for cron mail).")
@click.option("--hours", default=None, help="Same as --deadline-hours.")
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
    hours: str | None,
    webhook: str | None,
    **flags: Any,
) -> None:
    """Warn before, and escalate once after, the postmortem deadline (run by cron).

    Flushes the ticket outbox, then for every open incident: done when its draft passes
    lint or its ticket is resolved; else ok, due-soon (warning comment on the ticket) or
    overdue (comment, postmortem-overdue label, webhook), each sent once. Exit 0 nothing
    overdue, 1 something overdue, 3 the check was degraded (says which incidents).
    """
    from rollback_pm import deadlines

    if hours is not None:
        flags["deadline_hours"] = hours
    if webhook is not None:
        flags["webhook_url"] = webhook
    settings = settings_from(ctx, flags)
    result = deadlines.run_check(settings, now=now, dry_run=dry_run)
    if result is None:  # another run holds the lock and does the work
        return
    if as_json:
        click.echo(json.dumps(deadlines.as_json(result), indent=2))
    else:
        lines = deadlines.event_lines(result)
        if not quiet:
            lines = deadlines.table_lines(result) + lines
        for line in lines:
            click.echo(line)
    for line in result.degraded:
        click.echo(f"rollback-pm: degraded: {line}", err=True)
    ctx.exit(result.exit_code)


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
    from rollback_pm import ledger_repair
    from rollback_pm.hook import drafts_dir

    settings = settings_from(ctx, flags)
    report = ledger_repair.check(
        settings.state_dir, drafts_dirs=[drafts_dir(settings)], evidence_dir=Path(settings.evidence_dir)
    )
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        for line in ledger_repair.check_lines(report):
            click.echo(line)
    ctx.exit(0 if report.clean else EXIT_FAILED)


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
    from rollback_pm import ledger_repair
    from rollback_pm.deadline import hours_for
    from rollback_pm.hook import drafts_dir

    settings = settings_from(ctx, flags)
    report = ledger_repair.rebuild(
        settings.state_dir,
        drafts_dirs=[drafts_dir(settings)],
        evidence_dir=Path(settings.evidence_dir),
        deadline_hours=partial(hours_for, settings),
        force=force,
    )
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        for line in ledger_repair.rebuild_lines(report):
            click.echo(line)
    if report.not_recovered:
        ctx.exit(EXIT_DEGRADED)


@cli.command()
@click.option(
    "--since",
    type=PERIOD_START,
    default="90d",
    show_default=True,
    help="Rollbacks since a duration back from now (90d, 12h) or a time (ISO 8601).",
)
@click.option("--service", default=None, help="Only this service.")
@click.option("--env", "environment", default=None, help="Only this environment.")
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
    since: Since,
    service: str | None,
    environment: str | None,
    html_to: str | None,
    json_to: str | None,
    csv_to: str | None,
    now: datetime | None,
    **flags: Any,
) -> None:
    """Insights: rollbacks per week, MTTD and MTTR, postmortems on time, follow-ups, repeats.

    --html FILE writes one page that opens offline (needs the report extra:
    pip install 'rollback-pm[report]'); --json and --csv are for machines. An incident
    counts in the period by its rollback time. Exit 0 done, 2 bad input, 3 done but
    some ledger records could not be read (they are listed).
    """
    from rollback_pm.deadline import hours_for
    from rollback_pm.report import build

    build.check_targets(html_to, json_to, csv_to)
    settings = settings_from(ctx, flags)
    clock = utcnow()
    scope = build.scope_for(since, until=now or clock, service=service, environment=environment)
    with build.open_ledger(settings.state_dir) as ledger:
        result = build.build(ledger, scope, partial(hours_for, settings))
    rendered = build.render(result, html=html_to, json_to=json_to, csv_to=csv_to, generated_at=clock)
    to_stdout = any(target == build.STDOUT for target, _ in rendered.outputs.values())
    written = []
    for target, text in rendered.outputs.values():
        if target == build.STDOUT:
            click.echo(text, nl=False)
        else:
            written.append(str(build.write_file(target, text)))
    count = result.rollbacks.count
    what = f"{count} rollback(s)" if count else "no rollbacks in this period"
    for path in written:
        click.echo(f"wrote {path}: {what}, {iso(scope.since)} to {iso(scope.until)}", err=to_stdout)
    for skipped in result.data.skipped:
        click.echo(f"rollback-pm: degraded: {skipped.record} {skipped.ident} left out: {skipped.reason}", err=True)
    if result.data.skipped:
        ctx.exit(EXIT_DEGRADED)


@cli.group("config")
def config_group() -> None:
    """Inspect the effective configuration."""


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def config_show(ctx: click.Context, as_json: bool) -> None:
    """Print every setting, its effective value and where it came from (secrets masked)."""
    settings = settings_from(ctx, {})
    rows = settings.rows()
    if as_json:
        click.echo(json.dumps([{"name": n, "value": v, "source": s} for n, v, s in rows], indent=2))
        return
    width = max(len(n) for n, _, _ in rows)
    for name, value, source in rows:
        click.echo(f"{name:<{width}}  {value}  [{source}]")


@config_group.command("options")
def config_options() -> None:
    """Print the option reference as a Markdown table (flags, env, plugin settings)."""
    click.echo(options_markdown(), nl=False)


def main() -> None:
    cli(prog_name="rollback-pm")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
