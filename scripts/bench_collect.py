#!/usr/bin/env python3
"""Benchmark evidence collection against `docker logs -t`, on real containers, in one run.

    python scripts/bench_collect.py            # creates the containers, measures, removes them
    python scripts/bench_collect.py --keep     # keep (and on the next run reuse) the containers
    python scripts/bench_collect.py --keep --only collect-phase   # the hook's collect phase alone

Containers (busybox image imported from the host, json-file logs, --network none):
  * 8 containers with 400,000 varied lines (~75 MB of output) each, plain access-log
    lines with nothing for the redactor to do;
  * with --mix mixed (the default runs both): 1 container with 400,000 lines of a
    redaction-heavy service log: 40% of the lines hold words that make the redactor look
    closer (auth, key=, token_ttl, URLs), 10% a real secret (the container's DB_PASSWORD,
    a bearer token) that must be masked; the script checks that it was;
  * 1 container with a 1 GiB log (generated with `yes | head -c`).

Measured (best of --repeat runs each; the machine is shared, so best-of is the stable figure):
  * the hook's collect phase (what the rollback waits for) on the 8 containers with the
    default caps (64 MiB kept of each ~100 MB log): the freeze, against today's one-pass
    collect of the same containers and against `docker logs -t` of them one after another,
    in rounds (each round runs the three back to back; the ratios are per round, and their
    median is printed: a noisy neighbour slows a round's three alike). Targets: freeze
    >= 10x the one-pass collect and >= 20x the serial CLI, peak RSS < 64 MiB. The finalize
    that processes the freeze is timed against the one-pass collect too (it must not be
    slower), and the whole `rollback-pm hook --phase collect` process once (start-up included);
  * one 400k-line container: `docker logs -t > file` vs collect() on the Engine API path
    and on the json-file fast path -> throughput ratios (targets: API >= 1.0x, fast >= 4x);
  * 8 containers: the CLI one after another vs collect(parallel=8) on both paths, and vs
    the finalize of an uncapped freeze of them (the same whole logs; target >= 4x);
  * the 1 GiB log: peak RSS of a process running collect() (target < 64 MiB), taken as
    getrusage(RUSAGE_CHILDREN).ru_maxrss in a wrapper process around it.

collect() runs in a child process each time; its time is the collect() call itself
(interpreter start-up and imports excluded, like the CLI's is not worth counting either;
the child's wall time including them is printed too). Byte caps are lifted for the
throughput runs so both sides write the whole log; the RSS runs use the defaults.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "rpm-evid-bench/busybox:1"
LABEL = "rollback-pm.bench"
LINES = 400_000
# ~185-byte lines that look like an access log and vary with i (no redaction trigger words).
GEN_LINES = (
    "awk 'BEGIN { for (i = 0; i < %d; i++) printf \"2026-05-13 08:47:%%02d.%%06d INFO [worker-%%d] GET /api/v1/orders/%%d?page=%%d "
    'status=200 duration=%%dms bytes=%%d user=%%d region=eu-central-1 trace=%%08x span=%%08x build=4f2a9c1 ok\\n", '
    "i %% 60, i, i %% 8, i * 7, i %% 50, i %% 997, i * 13, i %% 10007, i * 2654435761 %% 4294967296, i * 40503 %% 4294967296 }'"
) % LINES
SECRET = "Bench-Secret-7f3kQ9"
# One cycle of twenty realistic lines (~190 bytes on average): mostly plain service logs, several
# with words that make the redactor look closer but hold no secret (auth paths, key=, token_ttl,
# URLs without userinfo), one carrying the container's DB password (a known secret that must be
# masked) and one with a bearer token: 10% of the lines really need masking.
_PLAIN = [
    "INFO  [http-nio-8080-exec-7] c.e.orders.api.OrderController - GET /api/v1/orders/83421 status=200 "
    "duration_ms=37 user_id=5521 trace_id=4bf92f3577b34da6a3ce929d0e0e4736 region=eu-west-1",
    "DEBUG [http-nio-8080-exec-7] c.e.orders.repo.OrderRepository - select o.id, o.state, o.total from orders o "
    "where o.customer_id = ? limit 50 rows=12 took_ms=4 pool=hikari-1 active=3 idle=7",
    "INFO  [http-nio-8080-exec-3] c.e.orders.api.OrderController - GET /api/v1/orders?page=3 status=200 "
    "duration_ms=55 user_id=9023 items=50 trace_id=0c6e8f1a2b3c4d5e6f708192a3b4c5d6 cache=miss",
    "INFO  [kafka-consumer-0] c.e.orders.events.OrderEventListener - consumed topic=orders.v1 partition=7 "
    "offset=18823411 lag=0 handler=OrderPaidHandler duration_ms=12 outcome=ok worker=3",
    "INFO  [http-nio-8080-exec-9] c.e.orders.api.HealthController - GET /health status=200 duration_ms=1 "
    "db=up kafka=up inventory=degraded payments=up build=3f9c2d1 uptime_s=7265",
    "INFO  [scheduler-1] c.e.orders.jobs.ExpireCartsJob - expired carts count=17 oldest_age_s=86412 "
    "next_run=2024-05-14T10:27:31Z duration_ms=230 shard=4/16 node=orders-7d9f8b-x2k4q",
    "DEBUG [http-nio-8080-exec-1] c.e.orders.pricing.PriceCalculator - computed total=129.90 currency=EUR "
    "items=3 discounts=1 vat_rate=0.19 rounding=HALF_UP took_ms=2 customer_tier=gold",
    "INFO  [http-nio-8080-exec-4] c.e.orders.api.OrderController - POST /api/v1/orders status=201 "
    "duration_ms=143 user_id=7310 order_id=83422 items=2 trace_id=7d1f0e2c3b4a59687766554433221100",
    "WARN  [http-nio-8080-exec-5] c.e.orders.api.RateLimiter - client over limit client=web/5.12.0 "
    "window_s=60 limit=600 observed=612 action=throttle user_id=4411 region=eu-west-1",
    "INFO  [pool-2-thread-8] c.e.orders.mail.ReceiptMailer - receipt queued order_id=83419 template=receipt-v7 "
    "locale=de_DE attempt=1 queue=mail.outbound size_bytes=18233 took_ms=9",
    "DEBUG [kafka-producer-1] c.e.orders.events.Publisher - sent topic=orders.v1 partition=2 offset=9921173 "
    "bytes=1422 acks=all took_ms=3 batch=14 compression=lz4 producer=orders-7d9f8b",
    "INFO  [http-nio-8080-exec-6] c.e.orders.api.OrderController - GET /api/v1/orders/83400/items status=200 "
    "duration_ms=21 user_id=5521 items=4 trace_id=aa01bb02cc03dd04ee05ff0600112233",
]
_HINTED = [
    "INFO  [http-nio-8080-exec-2] c.e.orders.api.AuthFilter - POST /api/v1/auth/session status=201 duration_ms=81 "
    "user_id=1187 mfa=false client=web/5.12.0 trace_id=9a1c2e00b7d34c1f8e2b6a5d4c3b2a19",
    "WARN  [pool-3-thread-1] c.e.orders.stock.InventoryClient - slow upstream "
    "http://inventory.internal:8080/v2/stock?sku=AB-12345&warehouse=fra-2 took_ms=1204 retry=1/3 breaker=closed",
    "INFO  [kafka-consumer-0] c.e.orders.events.OrderEventListener - consumed topic=orders.v1 partition=7 "
    "offset=18823412 key=order-83421 lag=0 handler=OrderPaidHandler duration_ms=12 outcome=ok",
    "DEBUG [scheduler-2] c.e.orders.auth.SessionReaper - reaped sessions=42 token_ttl_seconds=3600 "
    "oldest_age_s=3702 next_run=2024-05-14T10:32:31Z took_ms=18 author=system shard=2/8",
    "INFO  [http-nio-8080-exec-8] c.e.orders.api.MonkeyTest - chaos probe ok keyboard_layout=de path=/api/v1/keys "
    "passed=true duration_ms=5 user_id=0 trace_id=1f2e3d4c5b6a79881726354453627180",
    "DEBUG [pool-4-thread-2] c.e.orders.client.CatalogClient - GET https://catalog.internal/v1/items/AB-12345 "
    'status=200 took_ms=33 cache=hit etag=W/"5f3a" attempt=1 trace_id=0a0b0c0d0e0f',
]
_SECRET = [
    "ERROR [pool-3-thread-4] c.e.orders.db.Migrator - cannot reach postgres as app with password "
    f"{SECRET} on db.internal:5432 (connection refused), retrying in 2000 ms attempt=3 of 10",
    "DEBUG [http-nio-8080-exec-3] c.e.orders.client.PaymentsClient - calling payments with Authorization: "
    "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl timeout_ms=3000 attempt=1",
]
CYCLE = [
    f"10:22:{i + 10:02d}.{i * 7919 % 1000:03d} {line}"
    for i, line in enumerate(
        _PLAIN[:4]
        + _HINTED[:2]
        + _PLAIN[4:6]
        + _SECRET[:1]
        + _HINTED[2:4]
        + _PLAIN[6:9]
        + _SECRET[1:]
        + _HINTED[4:]
        + _PLAIN[9:]
    )
]
assert len(CYCLE) == 20
GEN_MIXED = 'yes "$0" | head -n "$1"'
MIXED_ARGS = ["\n".join(CYCLE), str(LINES)]
MIXED_ENV = [f"DB_PASSWORD={SECRET}", "KEY_COUNT=3"]
GEN_GIB = "yes '2026-05-13 08:47:21.123456 INFO [worker-1] GET /api/v1/orders/123456?page=7 status=200 duration=12ms bytes=5120 user=4242 region=eu-central-1 trace=deadbeef ok' | head -c 1073741824"

CHILD = r"""
import json, sys, time
from pathlib import Path
from rollback_pm.evidence import CollectOptions, Selection, collect
args = json.loads(sys.argv[1])
options = CollectOptions(evidence_dir=Path(args["dir"]), fast_path=args["fast_path"], parallel=args["parallel"],
                         timeout=3600, min_free_mb=0)
if args["uncapped"]:
    options.max_bytes_per_container = 1 << 40
start = time.perf_counter()
result = collect(Selection(containers=args["containers"]), options)
seconds = time.perf_counter() - start
leaked = False
if args.get("secret"):  # after the timing: does the secret appear anywhere in the bundle?
    needle = args["secret"].encode()
    for item in result.files:
        with open(item.path, "rb") as handle:
            tail = b""
            while block := handle.read(1 << 20):
                leaked = leaked or needle in tail + block
                tail = block[-len(needle):]
print(json.dumps({"seconds": seconds, "bytes": result.file("log").bytes, "degraded": result.degraded,
                  "errors": result.errors, "paths": sorted({c.path_used for c in result.containers}),
                  "leaked": leaked, "redaction": result.redaction_counts}))
"""
FREEZE_CHILD = r"""
import json, sys, time
from pathlib import Path
from rollback_pm.evidence import CollectOptions, Selection, freeze
args = json.loads(sys.argv[1])
start = time.perf_counter()
options = CollectOptions(evidence_dir=Path(args["dir"]))
if args.get("uncapped"):
    options.max_bytes_per_container = 1 << 40
frozen = freeze(Selection(containers=args["containers"]), options, args["state"], key="bench")
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "frozen": frozen is not None,
                  "bytes": frozen.frozen_bytes if frozen else 0,
                  "errors": (frozen.errors + [c.error for c in frozen.containers if c.error]) if frozen else []}))
"""
FINALIZE_CHILD = r"""
import json, sys, time
from rollback_pm.evidence import finalize
args = json.loads(sys.argv[1])
start = time.perf_counter()
[bundle] = finalize(args["state"], key="bench")
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "bytes": bundle.file("log").bytes, "degraded": bundle.degraded,
                  "errors": bundle.errors, "timings": bundle.manifest["timings_s"]}))
"""
WRAPPER = r"""
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(proc.stderr)
print(proc.stdout.strip())
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(proc.returncode)
"""


def busybox_tar() -> bytes:
    busybox = shutil.which("busybox") or "/bin/busybox"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ("bin", "tmp"):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if name == "tmp" else 0o755
            tar.addfile(info)
        tar.add(busybox, arcname="bin/busybox")
        for applet in ("sh", "awk", "yes", "head", "echo"):
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
    return buf.getvalue()


def ensure_image(client: docker.APIClient) -> None:
    try:
        client.inspect_image(IMAGE)
    except docker.errors.ImageNotFound:
        client.import_image_from_data(
            busybox_tar(), repository=IMAGE.split(":", maxsplit=1)[0], tag=IMAGE.split(":")[1]
        )


def ensure_container(
    client: docker.APIClient, name: str, script: str, args: list[str] | None = None, env: list[str] | None = None
) -> str:
    try:
        info = client.inspect_container(name)
        if (
            info["Config"]["Labels"].get(LABEL) == script
            and info["Config"]["Cmd"][3:] == (args or [])
            and info["State"]["Status"] == "exited"
            and info["State"]["ExitCode"] == 0
        ):
            return info["Id"]
        client.remove_container(name, force=True)
    except docker.errors.NotFound:
        pass
    host = client.create_host_config(network_mode="none", log_config={"Type": "json-file", "Config": {}})
    container = client.create_container(
        IMAGE,
        command=["sh", "-c", script, *(args or [])],
        name=name,
        labels={LABEL: script},
        environment=env or [],
        host_config=host,
    )
    client.start(container["Id"])
    return container["Id"]


def wait_all(client: docker.APIClient, ids: list[str]) -> None:
    for ident in ids:
        code = client.wait(ident, timeout=1800)["StatusCode"]
        if code:
            raise SystemExit(f"generator container {ident[:12]} exited {code}")


def best(runs: list[float]) -> float:
    return min(runs)


def cli_logs(ident: str, out_dir: Path) -> float:
    target = out_dir / f"cli-{ident[:12]}.log"
    start = time.perf_counter()
    with open(target, "wb") as out:
        subprocess.run(["docker", "logs", "-t", ident], stdout=out, stderr=subprocess.STDOUT, check=True)
    seconds = time.perf_counter() - start
    target.unlink()
    return seconds


def run_collect(
    ids: list[str], fast_path: str, parallel: int, uncapped: bool, work: Path, secret: str = ""
) -> tuple[dict, float, int]:
    """(the child's report, its wall time, peak RSS in KiB)."""
    bundle_dir = work / f"ev-{fast_path}-{time.monotonic_ns()}"
    args = json.dumps(
        {
            "dir": str(bundle_dir),
            "fast_path": fast_path,
            "parallel": parallel,
            "uncapped": uncapped,
            "containers": ids,
            "secret": secret,
        }
    )
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, sys.executable, "-c", CHILD, args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"collect child failed:\n{proc.stdout}\n{proc.stderr}")
    report_line, rss_line = proc.stdout.strip().splitlines()[-2:]
    shutil.rmtree(bundle_dir, ignore_errors=True)
    report = json.loads(report_line)
    if report["degraded"]:
        raise SystemExit(f"collect was degraded: {report['errors']}")
    if report["leaked"]:
        raise SystemExit("the planted secret is in the bundle: redaction failed")
    return report, wall, int(rss_line)


def run_child(code: str, args: dict) -> tuple[dict, float, int]:
    """(a child's JSON report, its wall time, its peak RSS in KiB)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, sys.executable, "-c", code, json.dumps(args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"child failed:\n{proc.stdout}\n{proc.stderr}")
    report_line, rss_line = proc.stdout.strip().splitlines()[-2:]
    return json.loads(report_line), wall, int(rss_line)


def hook_collect_phase(ids: list[str], work: Path) -> float:
    """Wall time of the whole `rollback-pm hook --phase collect` process (interpreter start-up included)."""
    state = work / f"state-cli-{time.monotonic_ns()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLBACK_PM_", "CI_", "PLUGIN_"))}
    command = [
        sys.executable,
        "-m",
        "rollback_pm",
        "--state-dir",
        str(state),
        "hook",
        "--phase",
        "collect",
        "--service",
        "bench",
        "--deploy-sha",
        "0" * 40,
        "--evidence-dir",
        str(work / "ev-cli"),
    ]
    for ident in ids:
        command += ["--container", ident]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - start
    if proc.returncode or "frozen" not in proc.stdout:
        raise SystemExit(f"hook --phase collect did not freeze:\n{proc.stdout}\n{proc.stderr}")
    shutil.rmtree(state, ignore_errors=True)
    return wall


def freeze_and_finalize(ids: list[str], work: Path) -> tuple[dict, int]:
    """The finalize of an uncapped freeze (the whole logs, as the uncapped collects): (its report, peak RSS KiB)."""
    state = work / f"state-whole-{time.monotonic_ns()}"
    evidence = work / f"ev-whole-{time.monotonic_ns()}"
    frozen, _, _ = run_child(
        FREEZE_CHILD, {"containers": ids, "dir": str(evidence), "state": str(state), "uncapped": True}
    )
    if not frozen["frozen"] or frozen["errors"]:
        raise SystemExit(f"the whole-log freeze did not happen or was degraded: {frozen}")
    final, _, rss = run_child(FINALIZE_CHILD, {"state": str(state)})
    shutil.rmtree(state, ignore_errors=True)
    shutil.rmtree(evidence, ignore_errors=True)
    if final["degraded"]:
        raise SystemExit(f"the finalize was degraded: {final['errors']}")
    return final, rss


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def bench_collect_phase(ids: list[str], work: Path, rounds: int) -> None:
    """The hook's collect phase: freeze vs one-pass collect vs serial `docker logs -t`, per round."""
    print(f"\ncollect phase: {len(ids)} containers, default caps (64 MiB kept of each)")
    for ident in ids:
        cli_logs(ident, work)  # the page cache holds every log, as it would right after the failure
    rows = []
    for number in range(1, rounds + 1):
        state = work / f"state-{number}"
        frozen, frozen_wall, frozen_rss = run_child(
            FREEZE_CHILD, {"containers": ids, "dir": str(work / f"ev-frozen-{number}"), "state": str(state)}
        )
        if not frozen["frozen"] or frozen["errors"]:
            raise SystemExit(f"the freeze did not happen or was degraded: {frozen}")
        final, _, final_rss = run_child(FINALIZE_CHILD, {"state": str(state)})
        if final["degraded"]:
            raise SystemExit(f"the finalize was degraded: {final['errors']}")
        single, _, single_rss = run_collect(ids, "auto", 4, False, work)
        serial = sum(cli_logs(ident, work) for ident in ids)
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(work / f"ev-frozen-{number}", ignore_errors=True)
        row = {
            "freeze": frozen["seconds"],
            "freeze_wall": frozen_wall,
            "freeze_rss": frozen_rss / 1024,
            "frozen_mb": frozen["bytes"] / 1e6,
            "finalize": final["seconds"],
            "finalize_logs": final["timings"].get("logs_s", 0.0),
            "finalize_merge": final["timings"].get("merge_write_s", 0.0),
            "finalize_rss": final_rss / 1024,
            "single": single["seconds"],
            "single_rss": single_rss / 1024,
            "serial": serial,
        }
        rows.append(row)
        print(
            f"  round {number}: freeze {row['freeze']:.2f} s ({row['frozen_mb']:.0f} MB frozen, child wall "
            f"{row['freeze_wall']:.2f} s, peak RSS {row['freeze_rss']:.0f} MiB) | one-pass collect "
            f"{row['single']:.2f} s (peak RSS {row['single_rss']:.0f} MiB) | docker logs -t x{len(ids)} {row['serial']:.2f} s | "
            f"-> {row['single'] / row['freeze']:.1f}x, {row['serial'] / row['freeze']:.1f}x | finalize "
            f"{row['finalize']:.2f} s (reading {row['finalize_logs']:.2f} s, merge after it "
            f"{row['finalize_merge']:.2f} s, peak RSS {row['finalize_rss']:.0f} MiB)",
            flush=True,
        )
    cli = hook_collect_phase(ids, work)
    ratio_single = median([r["single"] / r["freeze"] for r in rows])
    ratio_serial = median([r["serial"] / r["freeze"] for r in rows])
    ratio_final = median([r["single"] / r["finalize"] for r in rows])
    peak = max(r["freeze_rss"] for r in rows)
    print(
        f"  median of the rounds: freeze {ratio_single:.1f}x faster than the one-pass collect (target >= 10x), "
        f"{ratio_serial:.1f}x faster than serial docker logs -t (target >= 20x); peak RSS {peak:.0f} MiB "
        f"(target < 64 MiB)"
    )
    print(f"  finalize vs the one-pass collect it replaces: {ratio_final:.2f}x (>= 1: not slower)")
    print(
        f"  best: freeze {min(r['freeze'] for r in rows):.2f} s, one-pass {min(r['single'] for r in rows):.2f} s, "
        f"docker logs -t {min(r['serial'] for r in rows):.2f} s, finalize {min(r['finalize'] for r in rows):.2f} s; "
        f"whole `hook --phase collect` process {cli:.2f} s (Python start-up and imports included)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep the containers for the next run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--containers", type=int, default=8)
    parser.add_argument("--skip-gib", action="store_true", help="skip the 1 GiB RSS measurement")
    parser.add_argument(
        "--prefix", default="rpm-evid-bench", help="container name prefix (the engine may be shared: keep runs apart)"
    )
    parser.add_argument(
        "--mix",
        choices=("plain", "mixed", "both"),
        default="both",
        help="log content of the one-container comparison (default: both)",
    )
    parser.add_argument(
        "--only",
        choices=("collect-phase", "read"),
        help="collect-phase: the hook's freeze alone; read: the read-path comparisons alone (default: both)",
    )
    args = parser.parse_args()

    client = docker.APIClient(version="auto", timeout=600)
    ensure_image(client)
    names = [f"{args.prefix}-{i}" for i in range(args.containers)]
    print(
        f"preparing {args.containers} containers x {LINES} lines"
        + ("" if args.skip_gib or args.only == "collect-phase" else " and a 1 GiB log"),
        flush=True,
    )
    t0 = time.perf_counter()
    ids = [ensure_container(client, n, GEN_LINES) for n in names]
    gib = (
        None
        if args.skip_gib or args.only == "collect-phase"
        else ensure_container(client, f"{args.prefix}-gib", GEN_GIB)
    )
    wait_all(client, ids + ([gib] if gib else []))
    print(f"  ready in {time.perf_counter() - t0:.1f}s", flush=True)
    work = Path(tempfile.mkdtemp(prefix="rpm-evid-bench-", dir=os.environ.get("TMPDIR", "/var/tmp")))
    try:
        if args.only != "read":
            bench_collect_phase(ids, work, args.repeat)
        if args.only == "collect-phase":
            return 0
        singles = []
        if args.mix in ("plain", "both"):
            singles.append(("plain", ids[0], ""))
        if args.mix in ("mixed", "both"):
            singles.append(
                ("mixed", ensure_container(client, f"{args.prefix}-mixed", GEN_MIXED, MIXED_ARGS, MIXED_ENV), SECRET)
            )
            wait_all(client, [singles[-1][1]])
        for mix, one, secret in singles:
            log_path = client.inspect_container(one)["LogPath"]
            print(
                f"\none container, {mix} log: {LINES} lines, json-file {os.path.getsize(log_path) / 1e6:.1f} MB on disk"
            )
            cli_logs(one, work)  # warm the page cache
            # Interleaved repetitions: a noisy neighbour slows every contender alike.
            runs: dict[str, list] = {"cli": [], "never": [], "always": []}
            for _ in range(args.repeat):
                runs["cli"].append(cli_logs(one, work))
                for mode in ("never", "always"):
                    runs[mode].append(run_collect([one], mode, 1, True, work, secret))
            cli = best(runs["cli"])
            print(f"  docker logs -t > file        {cli:7.2f} s")
            for mode in ("never", "always"):
                report, wall, rss = min(runs[mode], key=lambda r: r[0]["seconds"])
                label = "collect, Engine API path" if mode == "never" else "collect, json-file fast path"
                print(
                    f"  {label:28s} {report['seconds']:7.2f} s  ({cli / report['seconds']:.2f}x the CLI; "
                    f"child wall {wall:.2f} s; peak RSS {rss / 1024:.0f} MiB; {report['bytes'] / 1e6:.1f} MB written; {report['paths']})"
                )
            if secret:
                print(f"  secret masked on both paths; redaction counts {runs['always'][0][0]['redaction']}")

        print(f"\n{len(ids)} containers")
        runs = {"cli": [], "never": [], "always": [], "finalize": []}
        for _ in range(max(1, args.repeat - 1)):
            runs["cli"].append(sum(cli_logs(i, work) for i in ids))
            for mode in ("never", "always"):
                runs[mode].append(run_collect(ids, mode, len(ids), True, work))
            runs["finalize"].append(freeze_and_finalize(ids, work))
        seq = best(runs["cli"])
        print(f"  docker logs -t, one after another  {seq:7.2f} s")
        final, final_rss = min(runs["finalize"], key=lambda r: r[0]["seconds"])
        print(
            f"  {'finalize of a whole-log freeze':34s} {final['seconds']:7.2f} s  ({seq / final['seconds']:.2f}x the CLI; "
            f"peak RSS {final_rss / 1024:.0f} MiB; {final['bytes'] / 1e6:.0f} MB written; reading "
            f"{final['timings'].get('logs_s', 0.0):.2f} s, merge left after it {final['timings'].get('merge_write_s', 0.0):.2f} s)"
        )
        for mode in ("never", "always"):
            report, wall, rss = min(runs[mode], key=lambda r: r[0]["seconds"])
            label = (
                "collect parallel=%d, API path" % len(ids)
                if mode == "never"
                else "collect parallel=%d, fast path" % len(ids)
            )
            print(
                f"  {label:34s} {report['seconds']:7.2f} s  ({seq / report['seconds']:.2f}x the CLI; "
                f"peak RSS {rss / 1024:.0f} MiB; {report['bytes'] / 1e6:.0f} MB written)"
            )

        if gib:
            size = os.path.getsize(client.inspect_container(gib)["LogPath"])
            print(f"\n1 GiB of output (json-file {size / 1e9:.2f} GB on disk), default caps (64 MiB kept)")
            for mode in ("never", "always"):
                report, wall, rss = run_collect([gib], mode, 4, False, work)
                label = "API path" if mode == "never" else "fast path"
                print(
                    f"  {label:10s} peak RSS {rss / 1024:6.1f} MiB   collect {report['seconds']:.2f} s   kept {report['bytes'] / 2**20:.0f} MiB"
                )
            report, wall, rss = run_collect([gib], "always", 4, True, work)
            print(
                f"  fast path, uncapped (whole 1 GiB written): peak RSS {rss / 1024:.1f} MiB, {report['seconds']:.2f} s"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not args.keep:
            for name in names + [f"{args.prefix}-gib", f"{args.prefix}-mixed"]:
                try:
                    client.remove_container(name, force=True)
                except docker.errors.NotFound:
                    pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
