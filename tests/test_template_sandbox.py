"""User templates render sandboxed: `rollback-pm draft ID --template evil.j2` that reaches for
Python internals, changes the context or includes a file from elsewhere exits 2 with the
template file and line, and writes nothing; the documented context still works."""

import re
from pathlib import Path

import pytest

from rollback_pm import drafts
from rollback_pm.ledger import Ledger
from tests.test_cli import run  # noqa: F401 - the CLI fixture
from tests.test_drafts import fx
from tests.test_tickets import incident

ROOT = Path(__file__).resolve().parent.parent

EVIL = [
    ("{{ ''.__class__.__mro__ }}", "access to attribute '__class__' of 'str' object is unsafe"),
    ("{{ cycler.__init__.__globals__ }}", "access to attribute '__init__'"),
    ("{{ self._TemplateReference__context }}", "_TemplateReference__context"),
    ("{{ lipsum.__globals__['os'].system('touch PWNED') }}", "access to attribute '__globals__'"),
    ("{{ incident.__class__.__init__.__globals__ }}", "access to attribute '__class__'"),
    ("{{ now.__class__.__subclasses__() }}", "access to attribute '__class__'"),
    ("{{ '{0.__class__}'.format(title) }}", "access to attribute '__class__'"),
    ("{{ smoke_steps.append(1) }}", "access to attribute 'append' of 'list' object is unsafe"),
    ("{{ os.system('touch PWNED') }}", "'os' is undefined"),
    ("{{ namespace.__init__.__globals__['sys'].modules['os'] }}", "access to attribute '__init__'"),
]


@pytest.fixture
def stored(run, tmp_path):  # noqa: F811
    with Ledger(tmp_path / "state") as ledger:
        record, _ = ledger.upsert_incident(incident(tmp_path))
    return record.id


def draft(run, tmp_path, iid, template: Path):  # noqa: F811
    return run("draft", iid, "--drafts-dir", str(tmp_path / "drafts"), "--template", str(template))


@pytest.mark.parametrize(("line", "message"), EVIL)
def test_python_internals_are_out_of_reach(run, tmp_path, stored, line, message):  # noqa: F811
    evil = tmp_path / "tpl" / "evil.j2"
    evil.parent.mkdir()
    evil.write_text(f"# Postmortem\n\nfine so far\n{line}\n", encoding="utf-8")
    result = draft(run, tmp_path, stored, evil)
    assert result.exit_code == 2, result.output
    assert f"{evil.resolve()}:4" in result.stderr, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "drafts").exists() or list((tmp_path / "drafts").iterdir()) == []
    assert not list(tmp_path.rglob("PWNED")) and not Path("PWNED").exists()


@pytest.mark.parametrize(
    "line",
    [
        '{% include "/etc/hostname" %}',
        '{% include "../secret.md" %}',
        '{% import "../secret.md" as s %}',
        '{% extends "/etc/hostname" %}',
        '{% include "escape/secret.md" %}',  # a symlink out of the template's directory
        '{% include "sub/../../secret.md" %}',
    ],
)
def test_includes_stay_in_the_templates_directory(run, tmp_path, stored, line):  # noqa: F811
    (tmp_path / "secret.md").write_text("TOP SECRET\n", encoding="utf-8")
    folder = tmp_path / "tpl"
    (folder / "sub").mkdir(parents=True)
    (folder / "escape").symlink_to(tmp_path)
    evil = folder / "evil.j2"
    evil.write_text(f"{{{{ marker }}}}\n# Postmortem\n{line}\n", encoding="utf-8")
    result = draft(run, tmp_path, stored, evil)
    assert result.exit_code == 2, result.output
    assert f"{evil.resolve()}:3" in result.stderr
    assert "resolve only from the template's own directory and the built-in templates" in result.stderr
    assert "TOP SECRET" not in result.output
    assert not (tmp_path / "drafts").exists() or list((tmp_path / "drafts").iterdir()) == []


def test_includes_from_its_own_directory_and_the_built_ins_work(run, tmp_path, stored):  # noqa: F811
    folder = tmp_path / "tpl"
    (folder / "parts").mkdir(parents=True)
    (folder / "parts" / "owner.md.j2").write_text("Owner: {{ owner | text(todo='who') }}\n", encoding="utf-8")
    (folder / "macros.j2").write_text("{% macro hello(x) %}Hello {{ x | text }}{% endmacro %}\n", encoding="utf-8")
    ours = folder / "ours.md.j2"
    ours.write_text(
        '{{ marker }}\n# {{ title }}\n{% import "macros.j2" as m %}{{ m.hello(service) }}\n'
        '{% include "parts/owner.md.j2" %}\n{% include "_smoke.md.j2" %}\n'
        "{% set ns = namespace(n=0) %}{% for s in smoke_steps %}{% set ns.n = ns.n + 1 %}{% endfor %}"
        "steps: {{ ns.n }}\n",
        encoding="utf-8",
    )
    result = draft(run, tmp_path, stored, ours)
    assert result.exit_code == 0, result.output
    [written] = list((tmp_path / "drafts").iterdir())
    text = written.read_text()
    assert "Hello api" in text and "Owner: [TODO: who]" in text and "steps: 1" in text
    assert "api health" in text  # from the built-in _smoke partial


def documented_variables() -> list[str]:
    """Every variable named in docs/templates.md's context tables."""
    doc = (ROOT / "docs" / "templates.md").read_text(encoding="utf-8")
    context = doc.split("## Context", 1)[1]
    names = []
    for table in re.findall(r"\| variable \| type \| meaning \|\n\|---\|---\|---\|\n((?:\|.*\n)+)", context):
        for row in table.splitlines():
            first = row.split("|")[1]
            names += re.findall(r"`([a-z_][a-z0-9_.]*)`", first)
    return names


def test_the_sandbox_keeps_every_documented_variable_and_filter(tmp_path):
    names = documented_variables()
    assert len(names) > 40 and "incident" in names and "times.detected" in names
    filters = (
        "{{ title | text }} {{ title | cell }} {{ deploy_sha | code }} {{ title | codeblock('log') }} "
        "{{ 'ci' | link(pipeline.url) }} {{ pipeline.url | url }} {{ deploy_ticket | ref }} {{ service | strong }} "
        "{{ title | oneline | text }} {{ owner | or_todo('who') }} {{ now | iso }} {{ now | hhmm }} "
        "{{ 436 | mmss }} {{ 3900 | human_duration }} {{ deploy_sha | sha7 }} {{ todo('x') }}\n"
        "{% filter codeblock('text') %}{{ title | verbatim }}{% endfilter %}\n\n"
    )
    user = tmp_path / "all.md.j2"
    user.write_text(filters + "".join(f"{name}: {{{{ {name} }}}}\n" for name in names), encoding="utf-8")
    text = drafts.render(fx.rich_incident(), str(user), now=fx.NOW)
    for name in names:
        assert f"\n{name}: " in text
    assert "[ci](<" in text and "**annotations-api**" in text
