"""Fuzzing settings and the tally printed at the end of a run (cases run, internal errors).

ROLLBACK_PM_FUZZ_EXAMPLES sets how many cases each property runs (default 200; a long
run: ROLLBACK_PM_FUZZ_EXAMPLES=5000 scripts/test.sh tests/fuzz). No deadlines: the test
machine is shared and slow, and timing is never what these tests check.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from tests.fuzz.tally import TALLY

settings.register_profile(
    "rollback-pm-fuzz",
    max_examples=int(os.environ.get("ROLLBACK_PM_FUZZ_EXAMPLES", "200")),
    deadline=None,
    database=None,  # a failure prints its falsifying example; nothing is written into the tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=True,
)
settings.load_profile("rollback-pm-fuzz")


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not TALLY.cases:
        return
    terminalreporter.section("fuzz tally")
    for target in sorted(TALLY.cases):
        terminalreporter.write_line(
            f"{target:<24} {TALLY.cases[target]:>7} cases  {TALLY.parsed[target]:>7} parsed  "
            f"{TALLY.refused[target]:>7} typed errors  {TALLY.internal[target]} internal errors"
        )
    terminalreporter.write_line(
        f"{'all':<24} {sum(TALLY.cases.values()):>7} cases  {sum(TALLY.parsed.values()):>7} parsed  "
        f"{sum(TALLY.refused.values()):>7} typed errors  {sum(TALLY.internal.values())} internal errors"
    )
