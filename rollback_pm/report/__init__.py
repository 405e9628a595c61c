"""The insights report: every rollback, how fast it was detected and mitigated, whether its
postmortem was done on time, its follow-ups and repeat failures.

- ``data``: reads the ledger for one scope (range, service, environment), each record on
  its own (a broken one is listed, never fatal to the rest);
- ``metrics``: one function per metric, with its definition (docs/report.md);
- ``plots``: the charts as SVG (matplotlib, the ``report`` extra), themed by CSS variables;
- ``html``: one self-contained page that opens offline;
- ``export``: the same figures as JSON and, one row per incident, CSV.

Only ``html`` and ``plots`` need matplotlib: JSON and CSV work without the extra.
"""
