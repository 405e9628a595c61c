#!/usr/bin/env python3
"""Benchmark evidence collection against `docker logs -t`, on real containers, in one run.

    python scripts/bench_collect.py            # creates the containers, measures, removes them
    python scripts/bench_collect.py --keep     # keep (and on the next run reuse) the containers

Containers (busybox image imported from the host, json-file logs, --network none):
  * 8 containers with 400,000 varied lines (~75 MB of output) each;
  * 1 container with a 1 GiB log (generated with `yes | head -c`).

Measured (best of --repeat runs each; the machine is shared, so best-of is the stable figure):
  * one 400k-line container: `docker logs -t > file` vs collect() on the Engine API path
    and on the json-file fast path -> throughput ratios (targets: API >= 1.0x, fast >= 4x);
  * 8 containers: the CLI one after another vs collect(parallel=8) on both paths;
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
    "status=200 duration=%%dms bytes=%%d user=%%d region=eu-central-1 trace=%%08x span=%%08x build=4f2a9c1 ok\\n\", "
    "i %% 60, i, i %% 8, i * 7, i %% 50, i %% 997, i * 13, i %% 10007, i * 2654435761 %% 4294967296, i * 40503 %% 4294967296 }'"
) % LINES
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
print(json.dumps({"seconds": seconds, "bytes": result.file("log").bytes, "degraded": result.degraded,
                  "errors": result.errors, "paths": sorted({c.path_used for c in result.containers})}))
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
        client.import_image_from_data(busybox_tar(), repository=IMAGE.split(":")[0], tag=IMAGE.split(":")[1])


def ensure_container(client: docker.APIClient, name: str, script: str) -> str:
    try:
        info = client.inspect_container(name)
        if info["Config"]["Labels"].get(LABEL) == script and info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 0:
            return info["Id"]
        client.remove_container(name, force=True)
    except docker.errors.NotFound:
        pass
    host = client.create_host_config(network_mode="none", log_config={"Type": "json-file", "Config": {}})
    container = client.create_container(IMAGE, command=["sh", "-c", script], name=name, labels={LABEL: script}, host_config=host)
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


def run_collect(ids: list[str], fast_path: str, parallel: int, uncapped: bool, work: Path) -> tuple[dict, float, int]:
    """(the child's report, its wall time, peak RSS in KiB)."""
    bundle_dir = work / f"ev-{fast_path}-{time.monotonic_ns()}"
    args = json.dumps({"dir": str(bundle_dir), "fast_path": fast_path, "parallel": parallel, "uncapped": uncapped,
                       "containers": ids})
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", WRAPPER, sys.executable, "-c", CHILD, args],
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"collect child failed:\n{proc.stdout}\n{proc.stderr}")
    report_line, rss_line = proc.stdout.strip().splitlines()[-2:]
    shutil.rmtree(bundle_dir, ignore_errors=True)
    report = json.loads(report_line)
    if report["degraded"]:
        raise SystemExit(f"collect was degraded: {report['errors']}")
    return report, wall, int(rss_line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep the containers for the next run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--containers", type=int, default=8)
    parser.add_argument("--skip-gib", action="store_true", help="skip the 1 GiB RSS measurement")
    args = parser.parse_args()

    client = docker.APIClient(version="auto", timeout=600)
    ensure_image(client)
    names = [f"rpm-evid-bench-{i}" for i in range(args.containers)]
    print(f"preparing {args.containers} containers x {LINES} lines" + ("" if args.skip_gib else " and a 1 GiB log"), flush=True)
    t0 = time.perf_counter()
    ids = [ensure_container(client, n, GEN_LINES) for n in names]
    gib = None if args.skip_gib else ensure_container(client, "rpm-evid-bench-gib", GEN_GIB)
    wait_all(client, ids + ([gib] if gib else []))
    print(f"  ready in {time.perf_counter() - t0:.1f}s", flush=True)
    work = Path(tempfile.mkdtemp(prefix="rpm-evid-bench-"))
    try:
        one = ids[0]
        log_path = client.inspect_container(one)["LogPath"]
        print(f"\none container: {LINES} lines, json-file {os.path.getsize(log_path) / 1e6:.1f} MB on disk")
        cli_logs(one, work)  # warm the page cache
        # Interleaved repetitions: a noisy neighbour slows every contender alike.
        runs: dict[str, list] = {"cli": [], "never": [], "always": []}
        for _ in range(args.repeat):
            runs["cli"].append(cli_logs(one, work))
            for mode in ("never", "always"):
                runs[mode].append(run_collect([one], mode, 1, True, work))
        cli = best(runs["cli"])
        print(f"  docker logs -t > file        {cli:7.2f} s")
        for mode in ("never", "always"):
            report, wall, rss = min(runs[mode], key=lambda r: r[0]["seconds"])
            label = "collect, Engine API path" if mode == "never" else "collect, json-file fast path"
            print(f"  {label:28s} {report['seconds']:7.2f} s  ({cli / report['seconds']:.2f}x the CLI; "
                  f"child wall {wall:.2f} s; peak RSS {rss / 1024:.0f} MiB; {report['bytes'] / 1e6:.1f} MB written; {report['paths']})")

        print(f"\n{len(ids)} containers")
        runs = {"cli": [], "never": [], "always": []}
        for _ in range(max(1, args.repeat - 1)):
            runs["cli"].append(sum(cli_logs(i, work) for i in ids))
            for mode in ("never", "always"):
                runs[mode].append(run_collect(ids, mode, len(ids), True, work))
        seq = best(runs["cli"])
        print(f"  docker logs -t, one after another  {seq:7.2f} s")
        for mode in ("never", "always"):
            report, wall, rss = min(runs[mode], key=lambda r: r[0]["seconds"])
            label = "collect parallel=%d, API path" % len(ids) if mode == "never" else "collect parallel=%d, fast path" % len(ids)
            print(f"  {label:34s} {report['seconds']:7.2f} s  ({seq / report['seconds']:.2f}x the CLI; "
                  f"peak RSS {rss / 1024:.0f} MiB; {report['bytes'] / 1e6:.0f} MB written)")

        if gib:
            size = os.path.getsize(client.inspect_container(gib)["LogPath"])
            print(f"\n1 GiB of output (json-file {size / 1e9:.2f} GB on disk), default caps (64 MiB kept)")
            for mode in ("never", "always"):
                report, wall, rss = run_collect([gib], mode, 4, False, work)
                label = "API path" if mode == "never" else "fast path"
                print(f"  {label:10s} peak RSS {rss / 1024:6.1f} MiB   collect {report['seconds']:.2f} s   kept {report['bytes'] / 2**20:.0f} MiB")
            report, wall, rss = run_collect([gib], "always", 4, True, work)
            print(f"  fast path, uncapped (whole 1 GiB written): peak RSS {rss / 1024:.1f} MiB, {report['seconds']:.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not args.keep:
            for name in names + ["rpm-evid-bench-gib"]:
                try:
                    client.remove_container(name, force=True)
                except docker.errors.NotFound:
                    pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
