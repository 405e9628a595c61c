#!/usr/bin/env python3
"""Benchmark the log-signal extractor against `docker logs -t` and a collect, in one run.

    python scripts/bench_signals.py            # creates the containers, measures, removes them
    python scripts/bench_signals.py --keep     # keep (and on the next run reuse) the containers

Containers (the busybox image of bench_collect.py, json-file logs, --network none): 8,
each logging ~85 MB (480,000 lines) so that the collection keeps its default cap of
64 MiB per container: the issue's "8 containers x 64 MiB". Their lines look like
services' logs: access lines at INFO, a retry loop at ERROR every 200th line (0.5%), a
Python traceback every 40,000th, and per container one format: plain text, JSON lines,
logfmt, or (one container in eight) INFO lines that all mention "error" (errors=0): the
costly case, where every line holds a trigger word and must be looked at.

Measured, in the same run (best of --repeat; the machine is shared):
  * `docker logs -t > file` of the 8 containers, one after another;
  * collect() of the 8 (parallel=8, default caps): the hook's evidence stage;
  * extract_bundle() over that bundle: the signals stage. Its share of the hook is
    extract / (collect + extract); the issue's target is at most 15%;
  * peak RSS of the extraction (target < 64 MiB), from getrusage(RUSAGE_CHILDREN) in a
    wrapper process around it;
  * the whole `rollback-pm hook` (evidence, facts, signals, ledger, draft, file ticket) on
    the 8, as a pipeline runs it, and the same hook with its signals and baseline stages
    replaced by no-ops: the overhead the signals add to the hook's wall time (target: at
    most +15%), and the hook's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_collect import CHILD as COLLECT_CHILD
from bench_collect import WRAPPER, cli_logs, ensure_container, ensure_image, wait_all

ROOT = Path(__file__).resolve().parents[1]
LINES = 480_000
# One format per container; one container in eight is the costly kind.
FORMATS = ("plain", "json", "logfmt", "mentions", "plain", "json", "logfmt", "plain")
# awk: i-th line of a container whose format is $1. Tracebacks are five lines on stderr.
GEN = r"""awk -v fmt="$0" -v n="$1" 'BEGIN {
  for (i = 0; i < n; i++) {
    if (i % 40000 == 39999) {
      print "Traceback (most recent call last):" > "/dev/stderr"
      print "  File \"/app/worker.py\", line 88, in run" > "/dev/stderr"
      print "    conn = connect(DSN)" > "/dev/stderr"
      print "  File \"/app/db.py\", line 12, in connect" > "/dev/stderr"
      printf "psycopg2.OperationalError: could not connect to server: Connection refused (attempt %d)\n", i > "/dev/stderr"
      continue
    }
    err = (i % 200 == 7)
    if (fmt == "json") {
      printf "{\"level\":\"%s\",\"ts\":%d.%03d,\"caller\":\"orders/handler.go:%d\",\"msg\":\"%s\",\"path\":\"/api/v1/orders/%d\",\"status\":%d,\"duration_ms\":%d,\"trace\":\"%08x\"}\n", err ? "error" : "info", 1747126041 + i, i % 1000, 40 + i % 9, err ? "cannot reach cache 10.0.3.7:6379, retrying" : "request served", i * 7, err ? 503 : 200, i % 997, i * 40503 % 4294967296
    } else if (fmt == "logfmt") {
      printf "time=2026-05-13T08:%02d:%02d.%03dZ level=%s msg=\"%s\" path=/api/v1/orders/%d status=%d duration_ms=%d trace=%08x\n", i / 60 % 60, i % 60, i % 1000, err ? "error" : "info", err ? "cannot reach cache 10.0.3.7:6379, retrying" : "request served", i * 7, err ? 503 : 200, i % 997, i * 40503 % 4294967296
    } else {
      extra = (fmt == "mentions") ? " errors=0 error_rate=0.00" : ""
      if (err) printf "2026-05-13 08:%02d:%02d,%03d ERROR [worker-%d] cannot reach cache 10.0.3.7:6379 (attempt %d), retrying in 2s\n", i / 60 % 60, i % 60, i % 1000, i % 8, i
      else printf "2026-05-13 08:%02d:%02d,%03d INFO  [worker-%d] GET /api/v1/orders/%d?page=%d status=200 duration=%dms bytes=%d user=%d trace=%08x%s\n", i / 60 % 60, i % 60, i % 1000, i % 8, i * 7, i % 50, i % 997, i * 13 % 10007, i % 10007, i * 2654435761 % 4294967296, extra
    }
  }
}'"""

EXTRACT_CHILD = r"""
import json, logging, sys, time
import structlog
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
from rollback_pm.signals import extract_bundle
start = time.perf_counter()
report = extract_bundle(sys.argv[1])
seconds = time.perf_counter() - start
cause = report.suspected_cause
print(json.dumps({"seconds": seconds, "bytes": report.stats.bytes, "lines": report.stats.lines,
                  "candidates": report.stats.candidates, "signals": sum(len(c.signals) for c in report.containers),
                  "cause": cause.text if cause else None, "cite": cause.ref.cite() if cause else None}))
"""


# The real CLI in a child; "off" turns the signals and baseline stages into no-ops.
HOOK_CHILD = r"""
import json, logging, sys, time
import structlog
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
from rollback_pm import cli, hook
from rollback_pm.replacing import BaselineRead
mode, args = sys.argv[1], sys.argv[2:]
staged = {"signals": 0.0, "baseline": 0.0}
if mode == "off":
    hook.signals_stage = lambda logs, **kw: ([], [])
    hook.baseline_stage = lambda *a, **kw: BaselineRead(None, "off")
else:  # time the two stages inside the run: a ratio the machine's noise cannot swing
    def timed(name, stage):
        def run(*a, **kw):
            t0 = time.perf_counter()
            try:
                return stage(*a, **kw)
            finally:
                staged[name] += time.perf_counter() - t0
        return run
    hook.signals_stage = timed("signals", hook.signals_stage)
    hook.baseline_stage = timed("baseline", hook.baseline_stage)
sys.argv = ["rollback-pm", *args]
start = time.perf_counter()
try:
    cli.main()
    code = 0
except SystemExit as exc:
    code = exc.code or 0
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "exit": code, **staged}))
"""


def hook(ids: list[str], work: Path, mode: str) -> tuple[float, int, str, float]:
    """One `rollback-pm hook` run over the containers: (seconds, peak RSS KiB, its stdout,
    seconds in the signals and baseline stages)."""
    run = work / f"hook-{mode}-{time.monotonic_ns()}"
    run.mkdir()
    (run / "smoke.jsonl").write_text(
        '{"step": 3, "name": "api health", "status": "failed", "ts": "2026-05-13T08:47:21Z", "message": "502"}\n'
    )
    (run / "none.toml").write_text("")
    args = ["--config", str(run / "none.toml"), "--state-dir", str(run / "state"), "hook"]
    args += ["--service", "bench", "--environment", "production", "--deploy-sha", "1" * 40]
    args += ["--rollback-sha", "2" * 40, "--pipeline-number", "1", "--smoke-report", str(run / "smoke.jsonl")]
    args += ["--evidence-dir", str(run / "evidence"), "--drafts-dir", str(run / "drafts"), "--timeout", "600"]
    for ident in ids:
        args += ["--container", ident]
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, sys.executable, "-c", HOOK_CHILD, mode, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    *out, report_line, rss_line = proc.stdout.strip().splitlines()
    report = json.loads(report_line)
    if report["exit"] not in (0,):
        raise SystemExit(f"hook ({mode}) exited {report['exit']}:\n{proc.stdout}\n{proc.stderr}")
    shutil.rmtree(run, ignore_errors=True)
    return report["seconds"], int(rss_line), "\n".join(out), report["signals"] + report["baseline"]


def run_child(code: str, args: list[str]) -> tuple[dict, int]:
    """(the child's JSON report, its peak RSS in KiB)."""
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if proc.returncode:
        raise SystemExit(f"child failed:\n{proc.stdout}\n{proc.stderr}")
    report_line, rss_line = proc.stdout.strip().splitlines()[-2:]
    return json.loads(report_line), int(rss_line)


def collect(ids: list[str], work: Path) -> tuple[dict, int, str]:
    bundle_dir = work / f"ev-{time.monotonic_ns()}"
    args = {"dir": str(bundle_dir), "fast_path": "auto", "parallel": len(ids), "uncapped": False, "containers": ids}
    report, rss = run_child(COLLECT_CHILD, [json.dumps(args)])
    if report["degraded"]:
        raise SystemExit(f"collect was degraded: {report['errors']}")
    [log] = sorted(bundle_dir.glob("rollback-*.log"))
    return report, rss, str(log)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep the containers for the next run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--containers", type=int, default=8)
    args = parser.parse_args()

    client = docker.APIClient(version="auto", timeout=600)
    ensure_image(client)
    names = [f"rpm-signals-bench-{i}" for i in range(args.containers)]
    print(f"preparing {args.containers} containers x {LINES} lines", flush=True)
    t0 = time.perf_counter()
    ids = [ensure_container(client, name, GEN, [FORMATS[i % len(FORMATS)], str(LINES)]) for i, name in enumerate(names)]
    wait_all(client, ids)
    print(f"  ready in {time.perf_counter() - t0:.1f}s", flush=True)
    work = Path(tempfile.mkdtemp(prefix="rpm-signals-bench-"))
    try:
        for ident in ids:
            cli_logs(ident, work)  # warm the page cache
        runs: dict[str, list] = {"cli": [], "collect": [], "extract": [], "hook_on": [], "hook_off": []}
        for _ in range(args.repeat):
            runs["hook_off"].append(hook(ids, work, "off"))
            runs["hook_on"].append(hook(ids, work, "on"))
            runs["cli"].append(sum(cli_logs(ident, work) for ident in ids))
            report, rss, log = collect(ids, work)
            runs["collect"].append((report["seconds"], rss))
            runs["extract"].append((*run_child(EXTRACT_CHILD, [log]), os.path.getsize(log)))
            shutil.rmtree(Path(log).parent, ignore_errors=True)
        cli = min(runs["cli"])
        collect_s, collect_rss = min(runs["collect"])
        (extract_report, extract_rss, log_bytes) = min(runs["extract"], key=lambda r: r[0]["seconds"])
        extract_s = extract_report["seconds"]
        print(f"\n{len(ids)} containers, bundle log {log_bytes / 2**20:.0f} MiB, {extract_report['lines']} lines")
        print(f"  docker logs -t, one after another   {cli:7.2f} s")
        print(f"  collect (parallel={len(ids)})             {collect_s:7.2f} s   peak RSS {collect_rss / 1024:.0f} MiB")
        print(
            f"  extract_bundle                      {extract_s:7.2f} s   peak RSS {extract_rss / 1024:.0f} MiB   "
            f"({extract_report['candidates']} lines looked at closely, {extract_report['signals']} signals)"
        )
        print(f"  extract / docker logs -t            {extract_s / cli:7.1%}")
        print(f"  extract / collect                   {extract_s / collect_s:7.1%}")
        print(
            f"  share of collect + extract          {extract_s / (collect_s + extract_s):7.1%}   (target: at most 15% of the hook)"
        )
        print(f"  suspected cause: {extract_report['cause']!r} at {extract_report['cite']}")
        on_s, on_rss, on_out, _ = min(runs["hook_on"])
        off_s, off_rss, _, _ = min(runs["hook_off"])
        # the stages' own share of each run, then the worst run: the same run's clock on both sides
        shares = [stage / (total - stage) for total, _, _, stage in runs["hook_on"]]
        stage_s = min(r[3] for r in runs["hook_on"])
        print(f"  rollback-pm hook, signals off       {off_s:7.2f} s   peak RSS {off_rss / 1024:.0f} MiB")
        print(f"  rollback-pm hook, signals on        {on_s:7.2f} s   peak RSS {on_rss / 1024:.0f} MiB")
        print(f"  signals + baseline stages in it     {stage_s:7.2f} s")
        print(
            f"  hook overhead of the signals        {max(shares):+7.1%}   (stages / rest of the same run, worst of "
            f"{len(shares)}; target: at most +15%)"
        )
        every = ", ".join(f"{off[0]:.1f}/{on[0]:.1f}" for off, on in zip(runs["hook_off"], runs["hook_on"]))
        print(f"  on vs off, best of each             {on_s / off_s - 1:+7.1%}   (runs off/on, s: {every}; noisy)")
        print(f"  hook / docker logs -t               {on_s / cli:7.1%}")
        print("  the hook said: " + " | ".join(line for line in on_out.splitlines() if "suspected cause" in line))
        if extract_rss / 1024 >= 64:
            print("  PEAK RSS OVER THE 64 MiB BUDGET")
            return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not args.keep:
            for name in names:
                try:
                    client.remove_container(name, force=True)
                except docker.errors.NotFound:
                    pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
