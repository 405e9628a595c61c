"""Memory stays bounded whatever the log looks like (a size check, not a timing one).

The logs are streamed: a 50 MiB line without a newline, a TTY container and a few
containers read in parallel must not raise the collector's peak RSS anywhere near the
64 MiB budget, in one pass or frozen and then finalized (its readers and the merging
child it forks included). Each collection runs in its own process; its peak RSS is read from
getrusage(RUSAGE_CHILDREN) in a wrapper process around it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]
BUDGET_MIB = 64

CHILD = r"""
import json, sys
from pathlib import Path
from rollback_pm.evidence import CollectOptions, Selection, collect, finalize, freeze
args = json.loads(sys.argv[1])
selection = Selection(name_regex=args["regex"])
if args["fast_path"] == "frozen":  # the hook's two phases, one after the other
    options = CollectOptions(evidence_dir=Path(args["dir"]), parallel=4, timeout=300)
    assert freeze(selection, options, args["state"], key="k") is not None
    [result] = finalize(args["state"], key="k")
else:
    result = collect(selection, CollectOptions(evidence_dir=Path(args["dir"]), fast_path=args["fast_path"],
                                               parallel=4, timeout=300))
print(json.dumps({"degraded": result.degraded, "errors": result.errors,
                  "kept": {c.name: c.kept_bytes for c in result.containers},
                  "paths": sorted({c.path_used for c in result.containers})}))
"""
WRAPPER = r"""
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(proc.stderr)
print(proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "{}")
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(proc.returncode)
"""


def collect_peak_rss(tmp_path: Path, regex: str, fast_path: str) -> tuple[dict, float]:
    args = json.dumps(
        {
            "dir": str(tmp_path / f"ev-{fast_path}"),
            "state": str(tmp_path / "state"),
            "fast_path": fast_path,
            "regex": regex,
        }
    )
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, sys.executable, "-c", CHILD, args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report, rss_kib = proc.stdout.strip().splitlines()[-2:]
    return json.loads(report), int(rss_kib) / 1024


@pytest.mark.parametrize("fast_path", ["always", "never", "frozen"])
def test_peak_rss_stays_in_budget_on_awkward_logs(tmp_path, containers, fast_path):
    containers.run("oneline", "head -c 52428800 /dev/zero | tr '\\0' x")  # 50 MiB, no newline
    containers.run(
        "tty", "i=0; while [ $i -lt 3000 ]; do head -c 1000 /dev/zero | tr '\\0' t; echo; i=$((i+1)); done", tty=True
    )
    containers.run("lines", "seq 1 300000")
    report, peak_mib = collect_peak_rss(tmp_path, f"{containers.prefix}.*", fast_path)
    assert not report["degraded"], report["errors"]
    assert report["paths"] == (["api"] if fast_path == "never" else ["json-file"])
    assert report["kept"][f"{containers.prefix}oneline"] >= 50 * 1024 * 1024
    assert peak_mib < BUDGET_MIB, f"peak RSS {peak_mib:.1f} MiB on the {fast_path} path"
