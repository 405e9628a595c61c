"""What the failing software itself said: the signals in a bundle's redacted log.

Runs after collection over the bundle's files, never Docker: one streaming pass (bounded
memory whatever the log size) finds per container its error/fatal/critical lines in the
common formats, its stack traces kept whole, the first of them after the bad version
started and its last lines before it exited or was killed; repeats collapse into
templates with a count and first/last time; a baseline of the replacing version's logs
marks what is new. Then the signals are ranked and one suspected cause is chosen, with
its rationale (``rank``).

Public interface (for the draft, ticket and ledger stages)::

    report = extract_bundle("/var/log/azaion/rollback-20260513T084721Z.log",
                            baseline=Baseline.from_log(replacing_log),   # optional
                            bad_since=deployed_at)                       # optional
    report.suspected_cause.text, .ref.cite(), .rationale     # "KeyError: 'DATABASE_URL'", "rollback-…log:12-19"
    for c in report.containers:                              # ContainerSignals
        c.context.describe(), c.strongest(3), c.first_signal, c.tail
    report.to_dict() / SignalReport.from_dict(d)             # JSON for the ledger
    report.signature(failed_step="api health")               # FailureSignature for repeat detection

Modules: ``levels`` (which lines are errors, per format), ``traces`` (multi-line blocks),
``templates`` (masking), ``scan`` (the pass), ``tail`` (last lines), ``baseline`` (new
vs. noise), ``rank`` (scores, suspected cause), ``model`` (the result), ``extract``.
"""

from rollback_pm.signals.baseline import Baseline
from rollback_pm.signals.extract import SignalOptions, bundle_files, extract, extract_bundle
from rollback_pm.signals.model import (
    ContainerContext,
    ContainerSignals,
    FailureSignature,
    LineRef,
    Signal,
    SignalReport,
    SuspectedCause,
    Tail,
    TailLine,
)
from rollback_pm.signals.templates import template

__all__ = [
    "Baseline",
    "ContainerContext",
    "ContainerSignals",
    "FailureSignature",
    "LineRef",
    "Signal",
    "SignalOptions",
    "SignalReport",
    "SuspectedCause",
    "Tail",
    "TailLine",
    "bundle_files",
    "extract",
    "extract_bundle",
    "template",
]
