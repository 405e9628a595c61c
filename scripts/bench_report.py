#!/usr/bin/env python3
"""Benchmark `rollback-pm report` over a big ledger: 10,000 incidents spread over a year.

    python scripts/bench_report.py                     # seeds a ledger in a temp dir, times the report
    python scripts/bench_report.py --incidents 2000    # another size
    python scripts/bench_report.py --keep DIR          # seed into DIR once, reuse it next time

The ledger is built through the Ledger API (the hook's and check-deadlines' own calls):
several services and environments, a ticket, evidence and a failure signature for every
incident (a few signatures repeat often, most rarely), follow-ups for most, postmortems
done on time, late and still open, some incidents without a live time. Then each output
runs as the real command in a fresh process, best of --repeat:

  * report --html (import, read, compute, draw, write), --json, --csv;
  * and, for scale, `rollback-pm incidents list --json` on the same ledger: the existing
    command that also reads every incident, measured in the same run.

It prints the wall and CPU times, the ratio to `incidents list`, and the sizes of the outputs.
No figure is asserted: the machine is shared and noisy, so compare within one run.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rollback_pm.ledger import Ledger  # noqa: E402
from rollback_pm.models import EvidenceFile, Followup, Incident, Signature, TicketRef  # noqa: E402
from rollback_pm.timeutil import iso, stamp  # noqa: E402

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)
SERVICES = ("api", "web", "worker", "billing", "search", "auth", "gateway", "notifier", "reports")
ENVIRONMENTS = ("production", "production", "production", "staging", "canary")
STEPS = ("1 containers up", "2 web responds", "3 api health", "4 login flow", "5 checkout", "6 search")


def _minutes(rng: random.Random, median: float, spread: float = 0.9) -> timedelta:
    return timedelta(minutes=median * math.exp(rng.gauss(0, spread)))


def seed(state: Path, count: int, rng: random.Random) -> None:
    signatures = [f"sig-{n:03d}-{rng.getrandbits(32):08x}" for n in range(60)]
    weights = [1 / (n + 1) for n in range(len(signatures))]  # a few repeat often, most rarely
    with Ledger(state) as ledger:
        ledger.db.execute("PRAGMA synchronous = OFF")  # seeding only; the report reads it normally
        for n in range(count):
            service = SERVICES[min(len(SERVICES) - 1, int(rng.expovariate(0.45)))]
            environment = rng.choice(ENVIRONMENTS)
            live = NOW - timedelta(days=365 * rng.random())
            detected = live + _minutes(rng, 6)
            mitigated = detected + _minutes(rng, 18)
            bundle = stamp(mitigated)
            incident = Incident(
                id="",
                service=service,
                environment=environment,
                deploy_sha=f"{rng.getrandbits(160):040x}",
                rollback_sha=f"{rng.getrandbits(160):040x}",
                pipeline_number=str(n),
                started_at=live if rng.random() > 0.05 else None,
                detected_at=detected if rng.random() > 0.03 else None,
                mitigated_at=mitigated,
                severity=rng.choice(("Critical", "High", "High", "Medium")),
                detected_by="smoke test",
                owner=rng.choice(("ana", "bo", "chen", None)),
                evidence=[
                    EvidenceFile(f"/var/log/azaion/rollback-{bundle}.{suffix}", kind, "0" * 64, 1000, bundle)
                    for kind, suffix in (("log", "log"), ("inspect", "inspect.json"), ("manifest", "manifest.json"))
                ],
            )
            stored, _ = ledger.upsert_incident(incident)
            ledger.set_draft(stored.id, Path(f"/var/lib/rollback-pm/drafts/{stored.id}.md"), "0" * 64, "azaion")
            key = f"OPS-{n + 1}"
            ledger.set_ticket(stored.id, TicketRef("jira", key, f"https://jira.example.com/browse/{key}"))
            if rng.random() < 0.75 and mitigated < NOW - timedelta(hours=2):
                ledger.mark_done(stored.id, min(NOW, mitigated + _minutes(rng, 16 * 60, 0.6)))
            which = rng.choices(range(len(signatures)), weights)[0]
            ledger.set_signature(
                Signature(stored.id, signatures[which], STEPS[which % len(STEPS)], ["FATAL: <*>"], created_at=mitigated)
            )
            for row in range(rng.choice((0, 1, 2, 3))):
                target = (mitigated + timedelta(days=rng.randint(3, 60))).date().isoformat()
                closed = rng.random() < 0.6
                ledger.upsert_followup(
                    Followup(
                        stored.id,
                        f"prevention-{row + 1}",
                        f"prevention action {row + 1}",
                        owner="ana",
                        target_date=target,
                        tracker="jira",
                        key=f"OPS-F{n}-{row}",
                        url=f"https://jira.example.com/browse/OPS-F{n}-{row}",
                        status="closed" if closed else "open",
                        created_at=mitigated,
                        closed_at=mitigated + timedelta(days=rng.randint(1, 40)) if closed else None,
                    )
                )
            if n and n % 2000 == 0:
                print(f"  seeded {n} incidents", flush=True)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(args: list[str], state: Path, repeat: int) -> tuple[float, float, subprocess.CompletedProcess[bytes]]:
    """Best wall time of `repeat` runs of the command, and the CPU time of that run."""
    best, cpu, result = math.inf, math.inf, None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), _cpu()
        result = subprocess.run(
            [str(Path(sys.executable).with_name("rollback-pm")), "--state-dir", str(state), *args],
            capture_output=True,
        )
        wall = time.perf_counter() - start
        if wall < best:
            best, cpu = wall, _cpu() - start_cpu
        if result.returncode != 0:
            sys.exit(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.decode()[-2000:]}")
    assert result is not None
    return best, cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="seed into this dir once and reuse it")
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rpm-bench-report-"))
    state = args.keep or work / "state"
    try:
        if not (state / "ledger.sqlite3").exists():
            print(f"seeding {args.incidents} incidents into {state} ...", flush=True)
            start = time.perf_counter()
            seed(state, args.incidents, random.Random(args.seed))
            print(f"  seeded in {time.perf_counter() - start:.1f} s")
        period = ["--since", "366d", "--now", iso(NOW) or ""]
        baseline, cpu, listed = timed(["incidents", "list", "--json"], state, args.repeat)
        rows = [("incidents list --json (baseline)", baseline, cpu, len(listed.stdout))]
        for name, extra in (
            ("report --html", ["--html", str(work / "report.html")]),
            ("report --json", ["--json", str(work / "report.json")]),
            ("report --csv", ["--csv", str(work / "report.csv")]),
        ):
            seconds, cpu, _ = timed(["report", *period, *extra], state, args.repeat)
            rows.append((name, seconds, cpu, Path(extra[1]).stat().st_size))
        print(
            f"\n{args.incidents} incidents over a year, best of {args.repeat} (the whole command, start-up included):"
        )
        print(f"{'command':<34} {'wall s':>7} {'cpu s':>7} {'vs list':>8} {'output':>10}")
        for name, seconds, cpu, size in rows:
            print(f"{name:<34} {seconds:>7.2f} {cpu:>7.2f} {seconds / baseline:>7.2f}x {size / 1e6:>7.2f} MB")
        print(f"load average: {' '.join(f'{v:.1f}' for v in os.getloadavg())} (the machine is shared)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
