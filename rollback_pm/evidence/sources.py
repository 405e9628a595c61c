"""The public seam for a source of evidence other than this engine's containers.

``collect`` snapshots the containers of the engine it talks to. Another source (the Swarm
source, ``rollback_pm.swarm.evidence``: every task of a service, on every node, read
through a manager) writes the same bundle with the same parts, so its caps, redaction,
atomic files, manifest and deadline are the containers' own. It composes them in
``collect``'s order:

1. ``validate(options)``; a ``Clock`` for ``options.timeout``; ``EvidenceDir.open`` and
   ``reserve(stamp(now), SUFFIXES)`` (released in a ``finally``);
2. its documents redacted together (``redact_documents``) into ``Documents``: their
   secrets are then known before any log line is read, and masked in every log;
3. ``read_logs`` in a thread pool, with a ``LogReader`` whose ``ApiLogs`` say which
   Engine API endpoint a log comes from and how each record's data is rewritten (the
   ``Spool`` list it fills is closed by the caller, whatever happens);
4. ``write_log_file``, ``write_json_file(evdir, bundle, "inspect", documents.inspect_docs)``
   and, last, ``finish_bundle`` with the source's own manifest sections (``extra``).

Only these names are promised to code outside ``rollback_pm.evidence``; the modules
behind them may change.
"""

from __future__ import annotations

from rollback_pm.evidence.bundle import finish_bundle, write_json_file, write_log_file
from rollback_pm.evidence.clock import Clock
from rollback_pm.evidence.collect import SUFFIXES, validate
from rollback_pm.evidence.documents import Documents, image_summary
from rollback_pm.evidence.evdir import EvidenceDir
from rollback_pm.evidence.logs import ApiLogs, LogReader, read_logs
from rollback_pm.evidence.spool import Spool
from rollback_pm.redact import redact_documents

__all__ = [
    "SUFFIXES",
    "ApiLogs",
    "Clock",
    "Documents",
    "EvidenceDir",
    "LogReader",
    "Spool",
    "finish_bundle",
    "image_summary",
    "read_logs",
    "redact_documents",
    "validate",
    "write_json_file",
    "write_log_file",
]
