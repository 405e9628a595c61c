"""The signals of a bundle: one pass over its log, its inspect JSON for each container's state.

``extract_bundle`` reads only the bundle's files (``rollback-<ts>.log`` and, beside it,
``.inspect.json`` and ``.manifest.json`` when present), never Docker.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from rollback_pm import log as rlog
from rollback_pm.errors import SignalsError
from rollback_pm.signals.baseline import Baseline
from rollback_pm.signals.model import ContainerContext, ContainerSignals, SignalReport
from rollback_pm.signals.rank import rank, score, suspected_cause
from rollback_pm.signals.scan import ContainerScan, Scanner
from rollback_pm.signals.tail import last_lines
from rollback_pm.timeutil import parse_ts

RESTART_SLACK_S = 0.05  # lines stamped this long after a restarting container's FinishedAt are still its last run's


@dataclass
class SignalOptions:
    tail_lines: int = 20  # last lines kept per container (repeats folded into one)
    keep: int = 20  # signals kept per container in the report, strongest first


def bundle_files(log_path: str) -> tuple[str, str]:
    """The inspect and manifest paths beside a bundle log ``rollback-<ts>.log``."""
    stem = log_path[: -len(".log")] if log_path.endswith(".log") else log_path
    return stem + ".inspect.json", stem + ".manifest.json"


def extract_bundle(
    log_path: str,
    *,
    baseline: Baseline | None = None,
    bad_since: datetime | str | None = None,
    options: SignalOptions | None = None,
) -> SignalReport:
    """The signals of a bundle, its containers' states read from the inspect JSON beside the log."""
    inspect_path, manifest_path = bundle_files(log_path)
    contexts = [ContainerContext.from_inspect(doc) for doc in _json_list(inspect_path) if isinstance(doc, dict)]
    manifest = _json(manifest_path)
    names = [str(c["name"]) for c in (manifest or {}).get("containers", []) if isinstance(c, dict) and c.get("name")]
    return extract(
        log_path,
        contexts=contexts,
        names=names or None,
        baseline=baseline,
        bad_since=bad_since,
        options=options,
    )


def extract(
    log_path: str,
    *,
    contexts: Iterable[ContainerContext] = (),
    names: list[str] | None = None,
    baseline: Baseline | None = None,
    bad_since: datetime | str | None = None,
    options: SignalOptions | None = None,
) -> SignalReport:
    """The signals of a bundle-format log.

    ``names``: every container name in the log (the manifest's), for fast line counting;
    ``contexts``: the containers' states (exit, OOM kill, FinishedAt, start); ``bad_since``:
    when the bad version went live (default: each container's creation); ``baseline``:
    the replacing version's signals, to mark what is new.
    """
    options = options or SignalOptions()
    if not os.path.isfile(log_path):
        raise SignalsError(f"no bundle log at {log_path}: give the rollback-<ts>.log of a collection")
    by_name = {c.name: c for c in contexts}
    since = _since(bad_since)
    starts = {name: s for name, c in by_name.items() if (s := since or c.start())}
    known = list(dict.fromkeys([*(names or []), *by_name]))
    try:
        result = Scanner(log_path, (names + list(by_name)) if names else None, starts, since).run()
    except OSError as exc:
        raise SignalsError(f"cannot read the bundle log {log_path}: {exc.strerror or exc}") from None
    containers = []
    for name in dict.fromkeys([*known, *result.containers]):
        scan = result.containers.get(name) or ContainerScan(name=name, start=starts.get(name, since))
        containers.append(_container(log_path, scan, by_name.get(name), result.blocks, baseline, options))
    report = SignalReport(
        log=log_path,
        containers=containers,
        suspected_cause=suspected_cause(containers),
        baseline=baseline.source if baseline else None,
        stats=result.stats,
    )
    rlog.get_logger("rollback_pm.signals").info(
        "signals.extracted",
        log=os.path.basename(log_path),
        containers=len(containers),
        signals=sum(len(c.signals) for c in containers),
        seconds=round(result.stats.seconds, 3),
        exact_lines=result.exact_lines,
    )
    return report


def _container(
    path: str,
    scan: ContainerScan,
    context: ContainerContext | None,
    blocks: list[Any],
    baseline: Baseline | None,
    options: SignalOptions,
) -> ContainerSignals:
    until, reason = None, "end of log"
    if context is not None and context.status in ("exited", "dead"):
        # Its lines end where it ended. (Not cut at FinishedAt: Docker can stamp the
        # last lines it copies from the pipe after it recorded the exit.)
        reason = "OOM-killed" if context.oom_killed else context.status
    elif context is not None and context.finished_at and (context.status == "restarting" or context.restart_count):
        # Its last exit, not the run that followed: the next run starts a restart delay
        # (100 ms at least) after FinishedAt.
        until = _plus(context.finished_at, RESTART_SLACK_S)
        reason = "restarting" if context.status == "restarting" else "last exit before a restart"
    tail = last_lines(path, blocks, scan.name, until, options.tail_lines, reason)
    signals = list(scan.signals.values())
    first = scan.first_signal
    for signal in [*signals, *([first] if first is not None and first not in signals else [])]:
        if baseline is not None:
            signal.new = signal.key not in baseline
        if tail is not None and tail.ref is not None:
            signal.near_exit = tail.ref.first <= signal.last_line <= tail.ref.last
        score(signal, first)
    return ContainerSignals(
        name=scan.name,
        context=context,
        signals=rank(signals)[: options.keep],
        first_signal=first,
        start=scan.start,
        tail=tail,
        templates_dropped=scan.dropped,
    )


def _plus(stamp: str, seconds: float) -> str:
    """A bundle timestamp (nanoseconds) plus some seconds, in the same fixed-width form."""
    total = int(stamp[20:29]) + round(seconds * 1e9)
    moment = datetime.fromisoformat(stamp[:19]) + timedelta(seconds=total // 1_000_000_000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{total % 1_000_000_000:09d}Z"


def _since(value: datetime | str | None) -> str | None:
    moment = parse_ts(value, "bad version start")
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def _json(path: str) -> Any:
    try:
        with open(path, "rb") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None  # a bundle without it still has its log: signals without container states


def _json_list(path: str) -> list[Any]:
    data = _json(path)
    return data if isinstance(data, list) else []
