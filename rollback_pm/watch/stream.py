"""The engine's service events, read in short windows ``[since, until]``.

Each window is one ``GET /events?since=..&until=..&filters={"type":["service"]}``: the
engine first replays what it still holds from ``since`` (its buffer: the last 256 events of
any kind, lost when dockerd restarts), then sends events live as they happen until
``until``, and closes. Reading in windows keeps every wait bounded (a watcher notices a
SIGTERM or a dead engine within a window), and the next window starts where the last one
ended, so nothing falls between them; the edges may repeat an event, which
``ServiceEvent.ident`` recognises.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import docker
import requests

from rollback_pm.evidence.client import engine_location
from rollback_pm.swarm.events import LineSplitter, ServiceEvent, parse_line

CONNECT_TIMEOUT = 10.0
READ_GRACE = 10.0  # silence past the window's end: the engine is hung or gone


class StreamBroken(Exception):
    """The event stream could not be opened or broke off; reconnect."""


def ns_param(time_ns: int) -> str:
    return f"{time_ns // 1_000_000_000}.{time_ns % 1_000_000_000:09d}"


def read_window(client: docker.APIClient, since_ns: int, until_ns: int, window: float) -> Iterator[ServiceEvent]:
    """The service events between two times (the later may be in the future: they come live)."""
    params = {
        "since": ns_param(since_ns),
        "until": ns_param(until_ns),
        "filters": json.dumps({"type": ["service"]}),
    }
    where = engine_location(client)
    try:
        response = client._get(
            client._url("/events"), params=params, stream=True, timeout=(CONNECT_TIMEOUT, window + READ_GRACE)
        )
    except requests.exceptions.RequestException as exc:
        raise StreamBroken(f"events from {where} could not be opened: {type(exc).__name__}") from None
    try:
        if response.status_code != 200:
            try:
                message = str(response.json().get("message", ""))[:300]
            except ValueError:
                message = response.text[:300]
            raise StreamBroken(f"the engine at {where} refused the events: {response.status_code} {message}".strip())
        splitter = LineSplitter()
        try:
            for chunk in response.iter_content(chunk_size=None):
                for line in splitter.feed(chunk):
                    event = parse_line(line)
                    if event is not None:
                        yield event
        except requests.exceptions.RequestException as exc:
            raise StreamBroken(f"events from {where} broke off: {type(exc).__name__}") from None
    finally:
        response.close()
