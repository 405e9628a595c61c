"""Evidence collection: select containers, stream their logs, inspect, redact, write a bundle.

Public interface (used by the CLI and the hook)::

    client = docker_client()                       # DockerUnavailable if the engine is down
    select_containers(client, Selection(labels=["app=web"]))  # NoContainersMatched
    result = collect(Selection(...), CollectOptions(evidence_dir=Path("/var/log/azaion")))
    result.files, result.containers, result.degraded

    # The hook's two phases: freeze before the rollback, process after it.
    frozen = freeze(selection, options, state_dir, key=rollback_key)   # None: collect() instead
    bundles = finalize(state_dir, key=rollback_key, park=record)       # record(key, bundle) each

Modules: ``select`` (one list call), ``client`` (engine calls, raw logs stream),
``documents`` (inspect and redact the documents), ``logs`` (one worker per container's
log), ``lines`` (record -> line format, shared by both read paths), ``files`` (json-file /
local fast path), ``redact`` (the rules, a package with a public API), ``spool`` (newest-bytes ring), ``merge``
(budgets, timestamp merge), ``bundle`` and ``manifest`` (the files written), ``evdir``
(atomic files), ``clock`` (the deadline), ``collect``
(orchestration). The hook's two phases: ``freeze`` (with ``ranges``: which bytes, ``kcopy``:
kernel copies, ``spooldir``: the private spool) and ``finalize`` (with ``mergechild``: the
merge while reading).
"""

from rollback_pm.evidence.client import docker_client
from rollback_pm.evidence.collect import collect
from rollback_pm.evidence.finalize import finalize
from rollback_pm.evidence.freeze import freeze
from rollback_pm.evidence.select import select_containers
from rollback_pm.evidence.types import BundleResult, CollectOptions, ContainerResult, Frozen, Selection

__all__ = [
    "BundleResult",
    "CollectOptions",
    "ContainerResult",
    "Frozen",
    "Selection",
    "collect",
    "docker_client",
    "finalize",
    "freeze",
    "select_containers",
]
