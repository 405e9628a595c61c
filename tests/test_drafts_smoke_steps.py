"""A draft lists a bounded number of smoke steps and says how many more there were."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from rollback_pm import drafts
from rollback_pm.models import SmokeStep

FIXTURES = Path(__file__).parent / "fixtures" / "drafts"
_spec = importlib.util.spec_from_file_location("draft_incidents", FIXTURES / "incidents.py")
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)  # type: ignore[union-attr]


def steps_line(text: str) -> str:
    (line,) = [ln for ln in text.splitlines() if ln.startswith("- All smoke steps: ")]
    return line


@pytest.mark.parametrize("template", drafts.TEMPLATE_NAMES)
def test_a_thousand_steps_list_25_and_say_how_many_more(template: str) -> None:
    incident = fx.rich_incident()
    incident.smoke_steps = [SmokeStep(name=f"check {n}", status="passed", step=n) for n in range(1, 1001)]
    line = steps_line(drafts.render(incident, template, now=fx.NOW))
    assert line.startswith("- All smoke steps: 1 `check 1` passed · 2 `check 2` passed · ")
    assert "25 `check 25` passed · and 975 more (`rollback-pm incidents show 7f3a9c2e1b4d` lists them all)" in line
    assert "check 26`" not in line


def test_up_to_25_steps_are_all_listed_with_no_remark() -> None:
    incident = fx.rich_incident()
    incident.smoke_steps = [SmokeStep(name=f"check {n}", status="passed", step=n) for n in range(1, 26)]
    line = steps_line(drafts.render(incident, "azaion", now=fx.NOW))
    assert line.endswith("25 `check 25` passed")
    assert "more" not in line
