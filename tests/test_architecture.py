"""The parts of rollback_pm depend on each other one way only (docs/architecture.md).

Imports are read from the source with ``ast`` (nothing is imported), including imports
inside functions and under ``TYPE_CHECKING``: a lazy import is still a dependency.

To add a rule, append a ``Rule`` to ``RULES``: the modules it applies to, the modules they
must never import, and why (the why is printed with each violation). A name covers the
module and everything under it (``rollback_pm.trackers`` covers ``rollback_pm.trackers.jira``);
names outside the package (``click``) work the same way.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "rollback_pm"


@dataclass(frozen=True)
class Rule:
    modules: tuple[str, ...]  # the importers this rule applies to
    never: tuple[str, ...]  # what they must not import
    why: str
    exempt: tuple[str, ...] = ()  # importers under ``modules`` the rule does not apply to
    allow: tuple[str, ...] = ()  # imports under ``never`` that are fine after all


CLI_LAYER = ("rollback_pm.cli", "rollback_pm.commands", "rollback_pm.__main__")
# Below everything: any part may import these, and they import only each other.
FOUNDATION = (
    "rollback_pm.errors",
    "rollback_pm.log",
    "rollback_pm.timeutil",
    "rollback_pm.models",
    "rollback_pm.atomic",
    "rollback_pm.safe_dirs",
    "rollback_pm.interrupt",
    "rollback_pm.memory",
    "rollback_pm.redact",
)

RULES: tuple[Rule, ...] = (
    Rule(
        modules=(PACKAGE,),
        exempt=CLI_LAYER,
        never=("rollback_pm.cli", "rollback_pm.commands", "click"),
        why="the library never imports the CLI: it raises typed errors and returns results; "
        "cli.py and rollback_pm/commands/ turn them into output and exit codes",
    ),
    Rule(
        modules=("rollback_pm.commands",),
        never=("rollback_pm.cli",),
        why="cli.py only wires click to the commands; a command never reaches back into the wiring",
    ),
    Rule(
        modules=("rollback_pm.evidence",),
        never=(
            "rollback_pm.trackers",
            "rollback_pm.tickets",
            "rollback_pm.drafts",
            "rollback_pm.lint",
            "rollback_pm.ledger",
            "rollback_pm.deadlines",
            "rollback_pm.webhook",
            "rollback_pm.hook",
            "rollback_pm.signals",
            "rollback_pm.swarm",
        ),
        why="evidence is taken first, while containers still exist, and must succeed when the "
        "ledger, a tracker or a template is broken: it never depends on what comes after it",
    ),
    Rule(
        modules=("rollback_pm.signals",),
        never=(
            "docker",
            "rollback_pm.evidence.client",
            "rollback_pm.evidence.collect",
            "rollback_pm.evidence.select",
            "rollback_pm.trackers",
            "rollback_pm.tickets",
            "rollback_pm.drafts",
            "rollback_pm.ledger",
            "rollback_pm.deadlines",
            "rollback_pm.webhook",
            "rollback_pm.hook",
        ),
        why="signals read the redacted bundle, never Docker a second time, and return data that "
        "the draft, the ticket and the ledger use: they never depend on those",
    ),
    Rule(
        modules=("rollback_pm.swarm",),
        never=(
            "rollback_pm.trackers",
            "rollback_pm.tickets",
            "rollback_pm.drafts",
            "rollback_pm.lint",
            "rollback_pm.ledger",
            "rollback_pm.deadlines",
            "rollback_pm.webhook",
            "rollback_pm.signals",
            "rollback_pm.hook",
            "rollback_pm.swarm_hook",
            "rollback_pm.watch",
        ),
        why="a Swarm source is evidence taken first, as for containers: it must succeed when the "
        "ledger, a tracker or a template is broken, and never depends on the stages after it",
    ),
    Rule(
        modules=("rollback_pm.swarm",),
        never=("rollback_pm.evidence",),
        allow=(
            "rollback_pm.evidence.sources",
            "rollback_pm.evidence.client",
            "rollback_pm.evidence.lines",
            "rollback_pm.evidence.types",
        ),
        why="the Swarm source builds its bundle through the evidence package's seam (evidence/sources.py), "
        "so the collector's internals can change without breaking it",
    ),
    Rule(
        modules=("rollback_pm.trackers",),
        never=(
            "rollback_pm.tickets",
            "rollback_pm.ledger",
            "rollback_pm.drafts",
            "rollback_pm.deadlines",
            "rollback_pm.evidence",
            "rollback_pm.hook",
        ),
        why="a tracker backend only talks to its tracker; tickets.py joins trackers to the ledger",
    ),
    Rule(
        modules=("rollback_pm.report",),
        never=(
            "docker",
            "rollback_pm.evidence",
            "rollback_pm.signals",
            "rollback_pm.trackers",
            "rollback_pm.tickets",
            "rollback_pm.drafts",
            "rollback_pm.lint",
            "rollback_pm.webhook",
            "rollback_pm.hook",
        ),
        why="the report only reads the ledger (and the deadline rule): making one never touches Docker, "
        "a tracker, a draft or a chat, so it works offline on a copy of the state dir",
    ),
    Rule(
        modules=("rollback_pm.followups", "rollback_pm.repeats", "rollback_pm.notices"),
        never=(
            "rollback_pm.hook",
            "rollback_pm.deadlines",
            "rollback_pm.report",
            "rollback_pm.evidence",
            "rollback_pm.signals",
            "docker",
        ),
        why="follow-ups work from the ledger, the drafts and the tracker; the cron and the hook call "
        "them, never the other way round",
    ),
    Rule(
        modules=FOUNDATION,
        never=(PACKAGE,),
        allow=FOUNDATION,
        why="the foundation (errors, log, timeutil, models, atomic, safe_dirs, interrupt, redact) sits below every part and "
        "imports only itself, so that any part can use it without a cycle",
    ),
)

# Named in RULES before they exist: where the shape is going (docs/architecture.md).
PLANNED: dict[str, str] = {}


def covers(prefix: str, name: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules(root: Path, package: str = PACKAGE) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}


@dataclass(frozen=True)
class Import:
    importer: str
    target: str
    path: Path
    line: int


def imports_of(name: str, path: Path, known: Iterable[str]) -> Iterator[Import]:
    """Every module ``name`` imports. ``from X import y`` counts as ``X.y`` when that is a
    module of the package (``from rollback_pm import drafts``), else as ``X``."""
    modules = set(known)
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, path, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                yield Import(name, candidate if candidate in modules else source, path, node.lineno)


def all_imports(root: Path, package: str = PACKAGE) -> list[Import]:
    modules = package_modules(root, package)
    return [imp for name, path in modules.items() for imp in imports_of(name, path, modules)]


def violations(imports: Iterable[Import], rules: Iterable[Rule], root: Path) -> list[str]:
    found = []
    for imp in sorted(imports, key=lambda i: (str(i.path), i.line)):
        for rule in rules:
            applies = any(covers(m, imp.importer) for m in rule.modules) and not any(
                covers(e, imp.importer) for e in rule.exempt
            )
            forbidden = any(covers(n, imp.target) for n in rule.never) and not any(
                covers(a, imp.target) for a in rule.allow
            )
            if applies and forbidden:
                found.append(
                    f"{imp.path.relative_to(root)}:{imp.line}: {imp.importer} imports {imp.target}: {rule.why}"
                )
    return found


def test_the_parts_depend_on_each_other_one_way():
    assert violations(all_imports(ROOT), RULES, ROOT) == []


def part_of(name: str) -> str:
    """rollback_pm.evidence.collect -> rollback_pm.evidence; rollback_pm -> rollback_pm."""
    return ".".join(name.split(".")[:2])


def part_cycle(imports: Iterable[Import]) -> list[str]:
    """A cycle between the parts (first-level modules and packages), or []."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if covers(PACKAGE, imp.target) and imp.target != PACKAGE:
            source, target = part_of(imp.importer), part_of(imp.target)
            if source != target:
                graph.setdefault(source, set()).add(target)
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str]:
        if node in path:
            cycle = path[path.index(node) :]
            first = cycle.index(min(cycle))  # the same cycle reads the same whatever the start
            return [*cycle[first:], *cycle[:first], cycle[first]]
        if node in done:
            return []
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            cycle = visit(nxt)
            if cycle:
                return cycle
        path.pop()
        done.add(node)
        return []

    for start in sorted(graph):
        cycle = visit(start)
        if cycle:
            return cycle
    return []


def test_no_part_imports_back_into_a_part_that_imports_it():
    assert part_cycle(all_imports(ROOT)) == []


def test_every_module_a_rule_names_exists_or_is_planned():
    modules = package_modules(ROOT)
    for rule in RULES:
        for name in (*rule.modules, *rule.never, *rule.exempt):
            if covers(PACKAGE, name):
                assert any(covers(name, m) for m in modules) or name in PLANNED, (
                    f"{name} is in a rule but not in the package: rename the rule with the module"
                )


# The checks themselves, on a small package written for the purpose: they must catch what
# they claim to, or the tests above would pass on anything.


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    return write(
        tmp_path,
        {
            "rollback_pm/__init__.py": "__version__ = '0'\n",
            "rollback_pm/cli.py": "import click\nfrom rollback_pm.evidence import collect\n",
            "rollback_pm/errors.py": "",
            "rollback_pm/log.py": "from rollback_pm import errors\nfrom . import timeutil\n",  # allowed
            "rollback_pm/timeutil.py": "from .hook import run\n",
            "rollback_pm/ledger.py": "",
            "rollback_pm/hook.py": "from rollback_pm import ledger\nfrom rollback_pm.evidence import collect\n",
            "rollback_pm/evidence/__init__.py": "from .collect import collect\n",
            "rollback_pm/evidence/collect.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from ..ledger import Ledger\n"
                "def f():\n    from rollback_pm.commands.collect import run\n    import click.testing\n"
            ),
        },
    )


def test_the_rule_check_catches_each_kind_of_import(sample):
    found = violations(all_imports(sample), RULES, sample)

    assert [line.split(": ")[:2] for line in found] == [
        ["rollback_pm/evidence/collect.py:3", "rollback_pm.evidence.collect imports rollback_pm.ledger"],
        ["rollback_pm/evidence/collect.py:5", "rollback_pm.evidence.collect imports rollback_pm.commands.collect"],
        ["rollback_pm/evidence/collect.py:6", "rollback_pm.evidence.collect imports click.testing"],
        ["rollback_pm/timeutil.py:1", "rollback_pm.timeutil imports rollback_pm.hook"],
    ]


def test_the_cycle_check_names_the_cycle(sample):
    assert part_cycle(all_imports(sample)) == []
    write(sample, {"rollback_pm/ledger.py": "def f():\n    from rollback_pm.hook import run\n"})
    # evidence -> ledger (under TYPE_CHECKING) -> hook (inside a function) -> evidence
    assert part_cycle(all_imports(sample)) == [
        "rollback_pm.evidence",
        "rollback_pm.ledger",
        "rollback_pm.hook",
        "rollback_pm.evidence",
    ]
