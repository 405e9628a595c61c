"""The six real failures through the real `rollback-pm hook`: the line that says why is in the draft.

Each failure of issue 16 runs in a container of the Debian test image on the real engine;
`rollback-pm hook` (a subprocess, as a pipeline runs it) collects it, reads its signals,
and writes the draft and the file tracker's ticket. The root-cause line (the traceback's
last line, PostgreSQL's ``FATAL:``, nginx's ``[emerg]``, the last line before an OOM kill,
a crash loop's repeated error, the ERROR behind a failing probe) must be in the draft's
"Suspected cause (verify)" line and in a fenced excerpt citing its lines, and a short
version in the ticket. The four templates take turns. The Python service goes through
both phases with a real rollback in between, so "new in the bad version" is judged
against the version that replaced it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from rollback_pm.ledger import Ledger
from rollback_pm.models import Incident
from tests.signals.apps import (
    CRASH_APP,
    HEALTH_APP,
    KEYERROR_APP,
    NGINX_BAD_CONF,
    OOM_APP,
    PG_BAD_PRELOAD,
    PROBE,
    SECOND,
    exited,
)

pytestmark = pytest.mark.docker

DEPLOY = "1111111111111111111111111111111111111111"
GOOD = "2222222222222222222222222222222222222222"
MD = MarkdownIt("commonmark").enable(["table"])
GOOD_ORDERS = "export DATABASE_URL=postgres://app@db/shop; " + KEYERROR_APP.replace(
    "exec python3 /tmp/app.py", "python3 /tmp/app.py; exec sleep 300"
)


def hook(
    tmp_path: Path, *args: str, template: str = "azaion", deploy: str = DEPLOY, pipeline: str = "7"
) -> subprocess.CompletedProcess[str]:
    smoke = tmp_path / "smoke.jsonl"
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    smoke.write_text(f'{{"step": 3, "name": "api health", "status": "failed", "ts": "{now}", "message": "502"}}\n')
    (tmp_path / "none.toml").write_text("")
    cmd = [
        sys.executable,
        "-m",
        "rollback_pm",
        "--state-dir",
        str(tmp_path / "state"),
        "hook",
        "--service",
        "shop",
        "--environment",
        "production",
        "--deploy-sha",
        deploy,
        "--rollback-sha",
        GOOD,
        "--pipeline-number",
        pipeline,
        "--smoke-report",
        str(smoke),
        "--evidence-dir",
        str(tmp_path / "evidence"),
        "--drafts-dir",
        str(tmp_path / "drafts"),
        "--template",
        template,
        *args,
    ]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "ROLLBACK_PM_CONFIG": str(tmp_path / "none.toml")}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def outcome(tmp_path: Path, pipeline: str = "7") -> tuple[Incident, str, str]:
    """The incident (of that pipeline), its draft and its ticket's body."""
    with Ledger(tmp_path / "state") as ledger:
        [incident] = [i for i in ledger.list() if i.pipeline_number == pipeline]
    ticket = json.loads((tmp_path / "state" / "tickets" / f"PM-{incident.id}.json").read_text())
    return incident, Path(incident.draft_path).read_text(), ticket["body"]


def log_fences(draft: str) -> list[str]:
    return [t.content for t in MD.parse(draft) if t.type == "fence" and t.info == "log"]


def suspected(draft: str) -> str:
    [line] = [line for line in draft.splitlines() if line.startswith("> **Suspected cause (verify)**")]
    return line


def cause_text(draft: str) -> str:
    """The line the suspected cause quotes, as a reader sees it (its first code span)."""
    [inline] = [
        t for t in MD.parse(draft) if t.type == "inline" and t.content.startswith("**Suspected cause (verify)**")
    ]
    return next(c.content for c in inline.children if c.type == "code_inline")


def assert_root_cause_in_draft_and_ticket(draft: str, body: str, line: str, container: str) -> None:
    """The line in the suspected cause and in a cited log excerpt; its short version in the ticket."""
    cause = suspected(draft)
    assert f"`{line}`" in cause and f"logged by `{container}`" in cause and "machine-suggested" in cause
    quoted = [f for fence in log_fences(draft) for f in fence.splitlines()]
    # as logged; in the last lines, repeats of its template are folded into it: "...  [× 6]"
    assert any(f == line or f.startswith(f"{line}  [× ") for f in quoted), quoted
    assert "## What the logs say" in draft or "### What the logs say" in draft
    assert f"`{container}`" in draft.split("What the logs say", 1)[1]
    # the ticket: its text is data, whitespace runs collapsed
    assert "**Suspected cause (verify, machine-suggested from the logs):**" in body
    assert f"`{' '.join(line.split())}`" in body and f"`{container}`" in body
    assert ".log:" in body.split("Suspected cause", 1)[1].split("\n", 1)[0]


@pytest.fixture(scope="module")
def started(failing):
    failing.start("postgres", PG_BAD_PRELOAD, user="postgres")
    failing.start("nginx", NGINX_BAD_CONF)
    failing.start("oom", OOM_APP, mem_limit="32m", memswap_limit="32m")
    failing.start("crashloop", CRASH_APP, restart_policy={"Name": "on-failure", "MaximumRetryCount": 3})
    failing.start(
        "unhealthy",
        HEALTH_APP,
        healthcheck={"test": ["CMD", "python3", "-c", PROBE], "interval": SECOND, "timeout": 3 * SECOND, "retries": 2},
    )
    return failing


def test_python_keyerror_through_both_phases_is_new_against_the_replacing_version(failing, tmp_path):
    failing.start("orders-bad", KEYERROR_APP)
    failing.wait_until("orders-bad", exited, "exited")
    select = ("--name", f"{failing.prefix}orders-.*")

    hook(tmp_path, "--phase", "collect", *select)
    # the rollback: the previous version replaces it under the same selection
    failing.start("orders-good", GOOD_ORDERS)
    failing.wait_until(
        "orders-good", lambda d: b"serving orders" in failing.client.logs(d["Id"]), "served (the good version)"
    )
    result = hook(tmp_path, "--phase", "finalize", *select)

    incident, draft, body = outcome(tmp_path)
    bad = f"{failing.prefix}orders-bad"
    assert_root_cause_in_draft_and_ticket(draft, body, "KeyError: 'DATABASE_URL'", bad)
    assert "the first new python stack trace" in suspected(draft)
    assert f"suspected cause (verify): KeyError: 'DATABASE_URL' ({bad}, rollback-" in result.stdout
    logs_say = draft.split("## What the logs say", 1)[1].split("## Root cause", 1)[0]
    assert f"compared with the recent logs of {failing.prefix}orders-good" in logs_say
    trace = logs_say.split("**Python stack trace**", 1)[1].split("```log", 1)[0]
    assert "new: the replacing version does not log it" in trace
    statsd = logs_say.split("ERROR:root:statsd host not set", 1)[0].rsplit("**First error", 1)[1]
    assert "the replacing version logs it too" in statsd  # recurring noise, and said so
    # the Log excerpt section fills from the logs: there is no Woodpecker step log
    excerpt = draft.split("### Log excerpt", 1)[1].split("## Impact", 1)[0]
    assert f"From the log of {bad}" in excerpt and "KeyError: 'DATABASE_URL'" in excerpt
    # no deploy time given: the window starts at the bad container's creation, and says so
    assert "start taken from the earliest start of the bad version's containers" in draft
    assert incident.started_at_source == "containers"
    with Ledger(tmp_path / "state") as ledger:
        signature = ledger.get_signature(incident.id)
    assert signature.failed_step == "api health" and signature.templates[0] == "trace:python:KeyError: <STR>"


def test_postgresql_fatal_in_the_blameless_draft(started, tmp_path):
    started.wait_until("postgres", exited, "exited")

    hook(tmp_path, "--container", started.ids["postgres"], template="blameless")

    _, draft, body = outcome(tmp_path)
    line = cause_text(draft)
    assert line.endswith('FATAL:  could not access file "pg_stat_statments": No such file or directory')
    assert_root_cause_in_draft_and_ticket(draft, body, line, f"{started.prefix}postgres")


def test_nginx_emerg_in_the_sev_draft_with_the_deploy_time_given(started, tmp_path):
    doc = started.wait_until("nginx", exited, "exited")

    hook(tmp_path, "--container", started.ids["nginx"], "--deployed-at", doc["Created"][:19] + "Z", template="sev")

    incident, draft, body = outcome(tmp_path)
    line = cause_text(draft)
    assert line.endswith('[emerg] 1#1: unknown directive "proxy_passs" in /etc/nginx/conf.d/app.conf:4')
    assert_root_cause_in_draft_and_ticket(draft, body, line, f"{started.prefix}nginx")
    assert incident.started_at_source == "given"
    assert "(start taken from the deploy time given to the hook (--deployed-at))" in draft


def test_oom_kill_in_the_finance_draft_quotes_its_last_line_and_limit(started, tmp_path):
    started.wait_until("oom", exited, "exited")
    last = started.client.logs(started.ids["oom"]).decode().splitlines()[-1]
    assert last.startswith("loaded chunk ")

    hook(tmp_path, "--container", started.ids["oom"], template="finance")

    _, draft, body = outcome(tmp_path)
    name = f"{started.prefix}oom"
    assert_root_cause_in_draft_and_ticket(draft, body, last, name)
    assert "OOM-killed (memory limit 32 MiB)" in suspected(draft)
    timeline = draft.split("## 3. Timeline", 1)[1].split("## 4.", 1)[0]
    assert f'{name} OOM-killed (memory limit 32 MiB, exit code 137); last line logged: "{last}"' in timeline
    assert "**Last lines before the OOM kill**" in draft


def test_crash_loop_in_the_draft_with_its_first_and_last_exit(started, tmp_path):
    started.wait_until("crashloop", lambda d: exited(d) and d["RestartCount"] == 3, "gave up restarting")

    hook(tmp_path, "--container", started.ids["crashloop"])

    _, draft, body = outcome(tmp_path)
    name = f"{started.prefix}crashloop"
    line = "FileNotFoundError: [Errno 2] No such file or directory: '/etc/worker/queue.conf'"
    assert_root_cause_in_draft_and_ticket(draft, body, line, name)
    timeline = next(t.content for t in MD.parse(draft) if t.type == "fence" and t.info == "text")
    assert f'{name} crash loop began: first exit after "{line}" (logged 4 times; rollback-' in timeline
    assert f"{name} crash loop: last of 4 exits (restarted 3 times), exit code 1" in timeline
    assert "crash loop: restarted 3 times, exit code 1, status exited" in draft  # its state in one line


def test_failing_probe_behind_the_services_own_error(started, tmp_path):
    def unhealthy_twice(doc: dict) -> bool:
        health = (doc["State"].get("Health") or {}).get("Status")
        return health == "unhealthy" and started.client.logs(doc["Id"]).count(b" ERROR ") >= 2

    started.wait_until("unhealthy", unhealthy_twice, "became unhealthy with two errors logged")

    hook(tmp_path, "--container", started.ids["unhealthy"])

    _, draft, body = outcome(tmp_path)
    name = f"{started.prefix}unhealthy"
    line = cause_text(draft)
    assert " ERROR [catalog.health] health check failed: cache 127.0.0.1:6379 unreachable: " in line
    assert "Connection refused" in line
    assert_root_cause_in_draft_and_ticket(draft, body, line, name)
    timeline = next(t.content for t in MD.parse(draft) if t.type == "fence" and t.info == "text")
    assert f"{name} first failing health probe: probe exit 1" in timeline
    assert "unhealthy" in draft.split("## What the logs say", 1)[1].split("**State:**", 1)[1].split("\n", 1)[0]


def test_the_same_failure_again_is_seen_before_by_its_signature(started, tmp_path):
    started.wait_until("nginx", exited, "exited")
    hook(tmp_path, "--container", started.ids["nginx"])
    first, _, _ = outcome(tmp_path)
    # a later deploy fails the same way: the signals stage's signature finds the first
    again = "3333333333333333333333333333333333333333"
    result = hook(tmp_path, "--container", started.ids["nginx"], deploy=again, pipeline="8")

    second, draft, _ = outcome(tmp_path, pipeline="8")
    with Ledger(tmp_path / "state") as ledger:
        a, b = ledger.get_signature(first.id), ledger.get_signature(second.id)
    assert a is not None and b is not None and a.signature == b.signature
    assert a.templates[0].endswith("[emerg] <NUM>#<NUM>: unknown directive <STR> in /etc/nginx/conf.d/app.conf:<NUM>")
    seen = draft.split("## Seen before", 1)[1].split("\n## ", 1)[0]
    assert f"`{first.id}`" in seen
    assert f"seen before: incident {first.id} of " in result.stdout
