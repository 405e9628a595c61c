"""Swarm's own rollbacks on a real one-node Swarm: watched, resumed, and met by a pipeline's hook.

Each test deploys a service with ``--update-failure-action rollback`` and short monitors,
updates it to a version whose task exits 3 a second after starting (Swarm then rolls back
by itself) or to one that runs but was judged bad (rolled back with ``docker service
rollback``), and checks that exactly one incident, with the right versions, the failed
tasks' logs, a draft and one ticket (file tracker) comes out, whoever sees it first.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from rollback_pm.config import load_settings
from rollback_pm.ledger import Ledger
from rollback_pm.models import Incident
from rollback_pm.swarm.select import SwarmSelection
from rollback_pm.swarm_hook import connect, finalized
from rollback_pm.watch import Watcher, WatchOptions
from tests.swarm.conftest import (
    BAD_SHA,
    GOOD_SHA,
    REPLICAS,
    SECRET,
    EngineRelay,
    Services,
    cli_args,
    cli_env,
    docker,
    inspect,
    run_cli,
    running_tasks,
    update_state,
    wait_for,
)

pytestmark = pytest.mark.docker


def incidents(tmp_path: Path) -> list[Incident]:
    if not (tmp_path / "state" / "ledger.sqlite3").exists():
        return []
    with Ledger(tmp_path / "state") as ledger:
        return ledger.list()


def recorded(tmp_path: Path) -> bool:
    found = incidents(tmp_path)
    return bool(found) and finalized(found[0])


def tickets(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "state" / "tickets").glob("*.json"))


def parked(tmp_path: Path) -> int:
    path = tmp_path / "state" / "ledger.sqlite3"
    if not path.exists():
        return 0
    try:
        # closing() closes it: a connection's own `with` only commits, and a connection left
        # open here kept a read of the ledger open in the test process
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return int(db.execute("SELECT count(*) FROM pending_evidence").fetchone()[0])
    except sqlite3.OperationalError:  # the watcher is still creating the ledger
        return 0


def bundles(incident: Incident) -> list[str]:
    return sorted({e.bundle for e in incident.evidence})


def evidence_text(incident: Incident, kind: str) -> str:
    return "".join(Path(e.path).read_text() for e in incident.evidence if e.kind == kind)


class WatcherThread:
    """``rollback-pm watch`` in a thread of this process, stopped as SIGTERM would."""

    def __init__(self, tmp_path: Path, service: str, docker_host: str | None = None) -> None:
        flags = {
            "state_dir": str(tmp_path / "state"),
            "evidence_dir": str(tmp_path / "evidence"),
            "drafts_dir": str(tmp_path / "drafts"),
            "min_free_mb": 1,
            "docker_host": docker_host,
        }
        (tmp_path / "none.toml").write_text("")
        self.settings = load_settings(flags, env={}, config_path=tmp_path / "none.toml")
        self.stop_event = threading.Event()
        self.connections = 0

        def counting_connect(settings):  # type: ignore[no-untyped-def]
            self.connections += 1
            return connect(settings)

        options = WatchOptions(
            window=1.0, backoff_initial=0.3, backoff_max=1.0, selection=SwarmSelection(services=[service])
        )
        self.watcher = Watcher(self.settings, options, stop=self.stop_event, connect=counting_connect)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.watcher.run()
        except BaseException as exc:  # the test reports it
            self.error = exc

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "the watcher did not stop"
        assert self.error is None, repr(self.error)


@pytest.fixture()
def watchers() -> Iterator[list[WatcherThread]]:
    running: list[WatcherThread] = []
    yield running
    for watcher in running:
        watcher.stop_event.set()
        watcher.thread.join(timeout=60)


def assert_automatic_incident(incident: Incident, service: str) -> None:
    assert (incident.service, incident.deploy_sha, incident.rollback_sha) == (service, BAD_SHA, GOOD_SHA)
    assert incident.rollback_sha_source == "image-label"
    swarm = incident.swarm
    assert swarm is not None and swarm.trigger == "automatic"
    assert swarm.deploy is not None and swarm.deploy.image.endswith("/app:bad") and swarm.deploy.digest
    assert swarm.rollback is not None and swarm.rollback.image.endswith("/app:good")
    assert swarm.update is not None and swarm.update.state == "rollback_completed"
    assert swarm.failures.count >= 1 and swarm.failures.exit_codes == [3]
    assert swarm.failures.errors[0] == "task: non-zero exit (3)"
    assert incident.detected_by == "Swarm update monitor"
    assert incident.detected_at == swarm.failures.first_at.replace(microsecond=0)  # type: ignore[union-attr]
    assert incident.mitigated_at is not None and incident.draft_path and incident.ticket is not None
    log = evidence_text(incident, "log")
    failed = [line for line in log.splitlines() if "FATAL: migration 42 failed" in line]
    assert failed and all(line.startswith(f"{service}.1.") and " stderr " in line for line in failed)
    assert "@" in failed[0].split(" ", 1)[0]  # <service>.<slot>.<task id>@<node>
    draft = Path(incident.draft_path).read_text()
    assert f"**Docker Swarm service `{service}`**" in draft
    assert "Swarm rolled the service back by itself" in draft and BAD_SHA in draft and GOOD_SHA in draft
    # The signals stage read the Swarm bundle: the failed task's own words, its state from the task list
    says = draft.split("## What the logs say\n", 1)[1].split("\n## ", 1)[0]
    assert "FATAL: migration 42 failed" in says and "exit code 3" in says
    assert "compared with the restored version's tasks in rollback-" in says
    assert "Suspected cause (verify)" in draft and "FATAL: migration 42 failed" in draft.split("Suspected cause", 1)[1]


def test_automatic_rollback_watched_as_it_happens_then_once(
    tmp_path: Path, services: Services, watchers: list[WatcherThread]
) -> None:
    """Two watchers share the state dir (a second instance started by mistake, or two
    processes on one manager): they take turns on the rollback and record it once."""
    name = services.create("web", "--rollback-monitor", "6s")
    watchers += [WatcherThread(tmp_path, name), WatcherThread(tmp_path, name)]
    services.update(name, "bad")
    wait_for(lambda: recorded(tmp_path), "the watchers to record the rollback")
    wait_for(lambda: update_state(name) == "rollback_completed", "Swarm's rollback")
    for watcher in watchers:
        watcher.stop()
    assert sum(w.watcher.report.handled for w in watchers) == 2  # one collected, one finalized

    [incident] = incidents(tmp_path)
    assert_automatic_incident(incident, name)
    assert incident.swarm is not None and incident.swarm.update is not None
    # Swarm's own words, read at rollback_started, outlive its "rollback completed"
    assert incident.swarm.update.message.startswith("update rolled back due to failure or early termination of task")
    # Evidence was taken once, while Swarm was still rolling back
    assert len(bundles(incident)) == 1
    [inspect_file] = [e for e in incident.evidence if e.kind == "inspect"]
    [doc] = json.loads(Path(inspect_file.path).read_text())
    assert doc["UpdateStatus"]["State"] == "rollback_started"
    assert any(t["Status"]["State"] == "failed" and t["NodeHostname"] for t in doc["Tasks"])
    assert len(tickets(tmp_path)) == 1

    again = run_cli(tmp_path, "watch", "--once", "--swarm-service", name)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().splitlines()[-1].startswith("0 rollback(s) recorded")
    [same] = incidents(tmp_path)
    assert same.id == incident.id and bundles(same) == bundles(incident)
    assert len(tickets(tmp_path)) == 1


def test_manual_rollback_recorded_by_watch_once(tmp_path: Path, services: Services) -> None:
    name = services.create("api")
    services.update(name, "runs")
    wait_for(lambda: update_state(name) == "completed", "the update to complete")
    docker("service", "rollback", "--detach", name)
    wait_for(lambda: update_state(name) == "rollback_completed", "the rollback to complete")

    first = run_cli(tmp_path, "watch", "--once", "--swarm-service", name)
    assert first.returncode == 0, first.stderr
    assert "1 rollback(s) recorded" in first.stdout
    assert (
        "incident: " in first.stdout
        and f"{name} production deploy {BAD_SHA[:7]} -> rollback {GOOD_SHA[:7]}" in first.stdout
    )
    [incident] = incidents(tmp_path)
    assert (incident.deploy_sha, incident.rollback_sha, incident.detected_by) == (BAD_SHA, GOOD_SHA, "operator")
    assert incident.swarm is not None and incident.swarm.trigger == "manual"
    assert incident.swarm.deploy is not None and incident.swarm.deploy.image.endswith("/app:bad-but-running")
    assert incident.swarm.failures.count == 0
    log = evidence_text(incident, "log")
    assert any(line.startswith(f"{name}.1.") and line.endswith("GET /api 500") for line in log.splitlines())
    assert "rolled back with docker service rollback" in Path(incident.draft_path or "").read_text()

    second = run_cli(tmp_path, "watch", "--once", "--swarm-service", name)
    assert second.returncode == 0, second.stderr
    assert "0 rollback(s) recorded" in second.stdout
    assert len(incidents(tmp_path)) == 1 and len(tickets(tmp_path)) == 1


def test_watcher_killed_mid_rollback_and_restarted(tmp_path: Path, services: Services) -> None:
    name = services.create("pay", "--rollback-monitor", "12s")
    env = cli_env(tmp_path)
    log = (tmp_path / "first-watcher.log").open("w")
    first = subprocess.Popen(cli_args(tmp_path, "watch", "--swarm-service", name), env=env, stderr=log)
    try:
        services.update(name, "bad")
        try:
            wait_for(lambda: parked(tmp_path) > 0 or first.poll() is not None, "evidence parked at rollback_started")
        finally:
            log.flush()
        assert first.poll() is None, (tmp_path / "first-watcher.log").read_text()
        state_when_killed = update_state(name)
        first.kill()  # SIGKILL: no clean-up of any kind
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    assert state_when_killed == "rollback_started"
    assert incidents(tmp_path) == []  # only the evidence so far
    wait_for(lambda: update_state(name) == "rollback_completed", "the rollback to complete")

    second = subprocess.Popen(
        cli_args(tmp_path, "watch", "--swarm-service", name),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: recorded(tmp_path), "the restarted watcher to record the rollback")
        second.send_signal(signal.SIGTERM)
        out, err = second.communicate(timeout=60)
    finally:
        if second.poll() is None:
            second.kill()
    assert second.returncode == 0, err
    assert "watch.stopping" in err and "signal=SIGTERM" in err
    [incident] = incidents(tmp_path)
    assert_automatic_incident(incident, name)
    assert len(bundles(incident)) == 1  # the one parked before the kill: nothing collected twice
    assert parked(tmp_path) == 0
    assert len(tickets(tmp_path)) == 1
    assert "incident: " in out


def test_pipeline_hook_and_watcher_make_one_incident_and_one_ticket(tmp_path: Path, services: Services) -> None:
    name = services.create("shop")
    services.update(name, "bad")
    wait_for(lambda: update_state(name) == "rollback_completed", "Swarm's rollback")

    watched = run_cli(tmp_path, "watch", "--once", "--swarm-service", name)
    assert watched.returncode == 0, watched.stderr
    [incident] = incidents(tmp_path)

    smoke = tmp_path / "smoke.jsonl"
    smoke.write_text(
        '{"step": 3, "name": "api health", "status": "failed", "ts": "2026-05-13T08:46:00Z", "message": "502"}\n'
    )
    pipeline = [
        "hook", "--swarm-service", name, "--deploy-sha", BAD_SHA, "--pipeline-number", "42",
        "--pipeline-url", "https://ci.example.com/repos/1/pipeline/42", "--smoke-report", str(smoke),
    ]  # fmt: skip
    hooked = run_cli(tmp_path, *pipeline)
    assert hooked.returncode == 0, hooked.stderr
    assert f"incident: {incident.id} (updated)" in hooked.stdout
    again = run_cli(tmp_path, *pipeline)
    assert again.returncode == 0 and f"incident: {incident.id} (updated)" in again.stdout

    [after] = incidents(tmp_path)
    assert after.id == incident.id
    assert after.pipeline_url == "https://ci.example.com/repos/1/pipeline/42"
    assert [s.name for s in after.smoke_steps] == ["api health"]
    assert after.swarm is not None and after.swarm.trigger == "automatic"
    assert len(bundles(after)) == 3  # the watcher's and each hook run's: evidence only grows
    assert len(tickets(tmp_path)) == 1
    ticket = json.loads(tickets(tmp_path)[0].read_text())
    assert incident.id in json.dumps(ticket)


def test_collect_a_stack_every_tasks_logs_redacted(tmp_path: Path, services: Services) -> None:
    stack = f"rpmst{tmp_path.name[-6:].replace('_', '')}"
    label = ["--label", f"com.docker.stack.namespace={stack}"]
    api = services.create(
        "api",
        *label,
        "--env",
        f"DB_PASSWORD={SECRET}",
        "--env",
        "KEY_COUNT=3",
        command=["sh", "-c", 'echo "connecting as app:$DB_PASSWORD"; echo "KEY_COUNT=$KEY_COUNT"; sleep 1000'],
    )
    web = services.create("web", *label)
    outsider = services.create("other")
    wait_for(lambda: "KEY_COUNT=3" in docker("service", "logs", api), "the api to log")

    result = run_cli(tmp_path, "collect", "--stack", stack, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    names = [c["name"] for c in summary["containers"]]
    assert any(n.startswith(f"{api}.1.") for n in names) and any(n.startswith(f"{web}.1.") for n in names)
    assert not any(n.startswith(outsider) for n in names)
    files = {f["kind"]: Path(f["path"]) for f in summary["files"]}
    log, docs, manifest = (files[k].read_text() for k in ("log", "inspect", "manifest"))
    for text in (log, docs, manifest):
        assert SECRET not in text
    assert "connecting as app:[REDACTED]" in log and "KEY_COUNT=3" in log and "app good started" in log
    assert "DB_PASSWORD=[REDACTED]" in docs and "KEY_COUNT=3" in docs
    assert {d["Spec"]["Name"] for d in json.loads(docs)} == {api, web}
    meta = json.loads(manifest)
    assert meta["source"] == "swarm" and meta["selection"]["stack"] == stack and meta["complete"] is True
    assert sorted(s["name"] for s in meta["swarm"]["services"]) == sorted([api, web])


def test_selection_mistakes_are_usage_errors(tmp_path: Path, swarm: str) -> None:
    missing = run_cli(tmp_path, "collect", "--swarm-service", "rpmsw-no-such-service")
    assert missing.returncode == 2
    assert "no Swarm service 'rpmsw-no-such-service'" in missing.stderr and "docker service ls" in missing.stderr
    both = run_cli(tmp_path, "collect", "--swarm-service", "x", "--label", "app=web")
    assert both.returncode == 2 and "not both in one run" in both.stderr
    empty_stack = run_cli(tmp_path, "hook", "--stack", "rpmsw-no-such-stack", "--deploy-sha", BAD_SHA)
    assert empty_stack.returncode == 2 and "has no services" in empty_stack.stderr


def test_watcher_reconnects_after_the_engine_went_away(
    tmp_path: Path, services: Services, relay: EngineRelay, watchers: list[WatcherThread]
) -> None:
    name = services.create("cart")
    watchers.append(WatcherThread(tmp_path, name, docker_host=relay.url))
    watcher = watchers[0]
    wait_for(
        lambda: watcher.connections >= 1 and watcher.watcher.checkpoint.since_ns is not None, "the watcher to follow"
    )
    relay.cut()  # dockerd "restarts": the stream breaks, connections are refused
    services.update(name, "bad")
    wait_for(lambda: update_state(name) == "rollback_completed", "Swarm's rollback, unseen by the watcher")
    assert incidents(tmp_path) == []
    relay.restore()
    wait_for(lambda: recorded(tmp_path), "the reconnected watcher to find the rollback")
    watcher.stop()
    assert watcher.watcher.report.reconnects >= 1
    [incident] = incidents(tmp_path)
    assert_automatic_incident(incident, name)
    assert inspect(name)["UpdateStatus"]["State"] == "rollback_completed"


def test_two_managers_one_forge_one_issue(tmp_path: Path, services: Services) -> None:
    """Watchers on two managers keep two ledgers but name the rollback alike: the second
    finds the first's issue by its unique label instead of opening another."""
    from tests.support.fake_gitea import FakeGitea

    name = services.create("stock")
    services.update(name, "bad")
    wait_for(lambda: update_state(name) == "rollback_completed", "Swarm's rollback")
    with FakeGitea() as forge:
        tracker = {
            "ROLLBACK_PM_TRACKER": "gitea",
            "ROLLBACK_PM_TRACKER_URL": forge.url,
            "ROLLBACK_PM_FORGE_REPO": forge.repo,
            "ROLLBACK_PM_TRACKER_TOKEN": forge.token,
        }
        ids = []
        for host in ("manager-1", "manager-2"):
            where = tmp_path / host
            where.mkdir()
            result = run_cli(where, "watch", "--once", "--swarm-service", name, env=cli_env(where, **tracker))
            assert result.returncode == 0, result.stderr
            [incident] = incidents(where)
            assert incident.ticket is not None and incident.ticket.tracker == "gitea"
            ids.append((incident.id, incident.ticket.key))
        assert ids[0] == ids[1]
        assert len(forge.issues) == 1


def test_the_same_failure_again_is_seen_before(tmp_path: Path, services: Services) -> None:
    """The signals stage stores the Swarm rollback's failure signature; the next rollback of the
    service failing the same way names the first in its "Seen before" (the repeats stage)."""
    name = services.create("ledger")
    for _ in range(2):
        services.update(name, "bad")
        wait_for(lambda: update_state(name) == "rollback_completed", "Swarm's rollback")
        result = run_cli(tmp_path, "watch", "--once", "--swarm-service", name)
        assert result.returncode == 0, result.stderr
    first, second = sorted(incidents(tmp_path), key=lambda i: i.created_at or i.id)
    with Ledger(tmp_path / "state") as ledger:
        signatures = [ledger.get_signature(i.id) for i in (first, second)]
    assert signatures[0] is not None and signatures[1] is not None
    assert signatures[0].signature == signatures[1].signature
    draft = Path(second.draft_path or "").read_text()
    seen = draft.split("Seen before", 1)[1]
    assert first.id in seen
    assert first.id not in Path(first.draft_path or "").read_text().split("Seen before", 1)[-1]


def test_a_draft_that_cannot_be_written_does_not_stop_the_ticket(tmp_path: Path, services: Services) -> None:
    """As in the container hook: the ticket opens and says why the draft is missing, the run
    exits 3, and the next run (the rollback is not done without its draft) writes it and
    tells the ticket once."""
    name = services.create("pay")
    services.update(name, "bad")
    wait_for(lambda: update_state(name) == "rollback_completed", "Swarm's rollback")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    drafts = tmp_path / "drafts"
    drafts.symlink_to(elsewhere)
    first = run_cli(tmp_path, "watch", "--once", "--swarm-service", name)
    assert first.returncode == 3, first.stderr
    [incident] = incidents(tmp_path)
    assert incident.draft_path is None and incident.ticket is not None and incident.evidence
    [ticket_file] = tickets(tmp_path)
    body = json.loads(ticket_file.read_text())["body"]
    why = (
        f"drafts dir {drafts} is a symlink (to {elsewhere}); refusing to follow it. pass a real, writable --drafts-dir"
    )
    assert f"**Postmortem draft missing:** {why}; once that is fixed" in body
    assert list(elsewhere.iterdir()) == []
    drafts.unlink()
    second = run_cli(tmp_path, "watch", "--once", "--swarm-service", name)
    assert second.returncode == 0, second.stderr
    [incident] = incidents(tmp_path)
    assert incident.draft_path and Path(incident.draft_path).parent == drafts
    data = json.loads(ticket_file.read_text())
    assert [c["body"] for c in data["comments"]] == [
        f"**Postmortem draft written:** `{incident.draft_path}` (attached)"
    ]
    assert len(tickets(tmp_path)) == 1


def test_two_managers_finishing_at_once_one_issue(tmp_path: Path, services: Services) -> None:
    """Watchers on two managers with their own ledgers finish the same rollback at the same
    moment (both creates held until both were sent; the forge's search an hour behind): the
    tickets path of the container hook makes one open issue, the lower number, in both ledgers."""
    from rollback_pm.trackers.claim import DUPLICATE_LABEL
    from tests.support.fake_gitea import FakeGitea

    name = services.create("stock")
    services.update(name, "bad")
    wait_for(lambda: update_state(name) == "rollback_completed", "Swarm's rollback")
    with FakeGitea(search_lag=3600) as forge:
        forge.server.inject("POST", "/repos/{owner}/{repo}/issues", gate=threading.Barrier(2), times=2)
        tracker = {
            "ROLLBACK_PM_TRACKER": "gitea",
            "ROLLBACK_PM_TRACKER_URL": forge.url,
            "ROLLBACK_PM_FORGE_REPO": forge.repo,
            "ROLLBACK_PM_TRACKER_TOKEN": forge.token,
        }
        hosts = [tmp_path / "manager-1", tmp_path / "manager-2"]
        runners = []
        for where in hosts:
            where.mkdir()
            runners.append(
                subprocess.Popen(
                    cli_args(where, "watch", "--once", "--swarm-service", name),
                    env=cli_env(where, **tracker),
                    text=True,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
            )
        outputs = [r.communicate(timeout=300) for r in runners]
        assert [r.returncode for r in runners] == [0, 0], outputs
        recorded_ = [incidents(where) for where in hosts]
        assert [len(found) for found in recorded_] == [1, 1]
        [[first], [second]] = recorded_
        assert first.id == second.id and first.ticket is not None and second.ticket is not None
        assert len(forge.issues) == 2  # both were created: the race happened
        winner = min(forge.issues)
        assert forge.labelled(first.unique_label, open_only=True) == [winner]
        [loser] = [i for i in forge.issues if i != winner]
        assert forge.issue(loser)["state"] == "closed" and DUPLICATE_LABEL in forge.label_names(loser)
        assert first.ticket.key == second.ticket.key == f"{forge.repo}#{winner}"
        assert forge.failures == [], "requests broke the API spec:\n" + "\n".join(forge.failures)


def test_a_pipeline_redeploying_the_previous_version_is_the_pipelines_incident(
    tmp_path: Path, services: Services
) -> None:
    """No Swarm rollback: the pipeline deploys the good version again. The incident is keyed
    as for containers, its evidence parked before the redeploy, its versions told apart by
    the deploy SHA; the watcher has nothing to record."""
    name = services.create("cart")
    services.update(name, "runs")
    wait_for(lambda: update_state(name) == "completed", "the bad deploy")
    pipeline = ["--swarm-service", name, "--service", "cart", "--deploy-sha", BAD_SHA, "--pipeline-number", "9"]
    collected = run_cli(tmp_path, "hook", "--phase", "collect", *pipeline)
    assert collected.returncode == 0, collected.stderr
    assert parked(tmp_path) == 3 and incidents(tmp_path) == []  # the bundle's three files
    services.update(name, "good")  # the pipeline's rollback: a deploy of the previous image
    wait_for(lambda: update_state(name) == "completed" and running_tasks(name) == REPLICAS, "the redeploy")
    finalized_run = run_cli(tmp_path, "hook", "--phase", "finalize", *pipeline)
    assert finalized_run.returncode == 0, finalized_run.stderr
    [incident] = incidents(tmp_path)
    assert (incident.service, incident.deploy_sha, incident.rollback_sha) == ("cart", BAD_SHA, GOOD_SHA)
    assert (incident.pipeline_number, incident.rollback_sha_source) == ("9", "image-label")
    assert incident.swarm is not None and incident.swarm.trigger == "pipeline"
    assert incident.swarm.deploy is not None and incident.swarm.deploy.image.endswith("/app:bad-but-running")
    assert "app bad started" in evidence_text(incident, "log")
    assert parked(tmp_path) == 0
    watched = run_cli(tmp_path, "watch", "--once", "--swarm-service", name)
    assert watched.returncode == 0 and "0 rollback(s) recorded" in watched.stdout
    assert len(incidents(tmp_path)) == 1 and len(tickets(tmp_path)) == 1
