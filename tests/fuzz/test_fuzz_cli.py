"""Fuzz the command line: every flag and every ROLLBACK_PM_* variable, with values at and
past each option's range (and the bytes a shell can put in argv), on the commands an
operator runs. Every case ends in 0, 2 or 3 (1 only where it is the command's own answer:
check-deadlines when something is overdue, lint when it has findings), never with
"internal error:" or a traceback, and a refusal names what to fix. After every case,
nothing under a final name is half-written: the ledger passes SQLite's check, every JSON
file parses, every draft is the one the ledger recorded (same SHA-256), no temp file is
left behind; and a refusal (exit 2) has changed nothing in the ledger.

In-process through click's CliRunner, against a state dir in a scratch directory, with the
`none` and `file` trackers (the remote ones are named too, and must be refused for their
missing URL or token before any request is sent: nothing here leaves the machine). The
collect and hook phases that need Docker select a label no container has.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import uuid
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import example, given
from hypothesis import strategies as st

from rollback_pm.cli import COLLECTION, FACTS, SELECTION, TICKETS, cli
from rollback_pm.config import BY_NAME, OPTIONS, Option
from rollback_pm.log import configure
from tests.fuzz.corpus import CLI
from tests.fuzz.scratch import scratch_dir
from tests.fuzz.strategies import big_ints, floats, timestamps
from tests.fuzz.tally import TALLY

WORK = scratch_dir("cli")
STATE = WORK / "state"
DRAFTS = WORK / "drafts"
CONFIG = WORK / "empty.toml"
CONFIG.write_text("")
SMOKE = WORK / "smoke.jsonl"
SMOKE.write_text('{"step": 3, "name": "api health", "status": "failed", "ts": "2026-05-13T08:46:00Z"}\n')
BAD_SMOKE = WORK / "bad.jsonl"
BAD_SMOKE.write_text("{not json\n")
DRAFT = Path(__file__).parents[1] / "fixtures" / "drafts" / "azaion_complete.md"
DEPLOY = "0123456789abcdef0123456789abcdef01234567"
ROLLBACK = "fedcba9876543210fedcba9876543210fedcba98"
NOBODY = f"rollback-pm-fuzz={uuid.uuid4().hex}"  # a label no container carries

# Never from the outside world: they would reach a network, a secret, or a path the test
# does not own. Their shapes are fuzzed where it is safe (below).
FIXED = {"state_dir", "evidence_dir", "drafts_dir", "repo_dir", "token_file", "docker_host"}
NETWORK = {"tracker_url", "forge_url", "woodpecker_url", "webhook_url", "tracker_token", "woodpecker_token"}
# What the environment must not bring in from the machine running the tests.
CLEAN_ENV: dict[str, str | None] = {
    name: None for name in os.environ if name.startswith(("ROLLBACK_PM_", "CI_", "PLUGIN_")) or name == "CI"
}


def seed() -> dict[str, str]:
    """Two incidents to read and re-render, with drafts and file tickets; the second damaged by
    hand (a year typo), so every reader's record isolation is fuzzed too. Name -> incident id."""
    ids = {}
    for service in ("api", "web"):
        args = [*FINALIZE_ARGS, "--service", service, "--rollback-sha", ROLLBACK, "--smoke-report", str(SMOKE)]
        result = CliRunner().invoke(cli, ["--config", str(CONFIG), "--state-dir", str(STATE), *args], env=CLEAN_ENV)
        configure()
        assert result.exit_code == 0, result.output
        ids[service] = re.search(r"incident: ([0-9a-f]{12})", result.output).group(1)  # type: ignore[union-attr]
    db = sqlite3.connect(STATE / "ledger.sqlite3")
    with db:
        db.execute("UPDATE incidents SET mitigated_at = '26-05-13T08:40:00Z' WHERE id = ?", (ids["web"],))
    db.close()
    return ids


FINALIZE_ARGS = ["hook", "--phase", "finalize", "--deploy-sha", DEPLOY, "--drafts-dir", str(DRAFTS)]
SEEDED = seed()
# incident ids as an operator types them: the whole id, a prefix, the damaged one, none
KNOWN = {"<api>": SEEDED["api"], "<api prefix>": SEEDED["api"][:5], "<damaged>": SEEDED["web"]}
known_ids = st.sampled_from(sorted(KNOWN))


def real(ident: str) -> str:
    return KNOWN.get(ident, ident)


# text a shell can hand over: any character but NUL, and undecodable bytes as Python sees
# them (surrogate-escaped)
argv_text = st.one_of(
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=40),
    st.binary(max_size=16).filter(lambda b: b"\x00" not in b).map(lambda b: b.decode("utf-8", "surrogateescape")),
)
# times an operator gives (this century, up to now): most of `timestamps` lies far outside
# the window every time flag accepts, and the command behind it would seldom run
recent = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime.now()).map(
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")
)
# three in four sane (one_of would flatten `timestamps` into a dozen branches beside it)
times = st.integers(0, 3).flatmap(lambda n: recent if n else timestamps.map(lambda t: str(t).replace("\x00", "")))
NASTY = [
    "",
    " ",
    "-1",
    "0",
    "inf",
    "-inf",
    "nan",
    "1e400",
    "99999999999999999999",
    "9" * 5000,
    "999999999d",
    "0026-05-13T08:40:00Z",
    "9999-12-31T23:59:59Z",
    "2026-05-13T08:47:21Z",
    "yesterday",
    "\u202egnp.exe",
    "--help",
    "=",
    ",,",
]
# no output, draft or ticket may ever show it: it is a password in a URL, or a token. Made
# at run time: Hypothesis also draws text from the literals in this file, and an echoed
# --service s3cret is no leak.
SECRET = f"s3cret{uuid.uuid4().hex[:12]}"
SAFE_URLS = [
    "",
    "not a url",
    "ftp://127.0.0.1:1/",
    "http://[::1",
    "http://h:99999/",
    f"http://user:{SECRET}@127.0.0.1:1/x",
    f"https://user:{SECRET}@[::1/x",
    "javascript:x",
]
TOKENS = [f"tok-{SECRET}-0123456789", f" {SECRET}\t", f"{SECRET}\udcff"]


def values(option: Option) -> st.SearchStrategy[str]:
    """Strings for ``option``: good ones of its kind, ones just past its range, and junk."""
    kind = option.kind
    if option.name in NETWORK:
        return st.sampled_from(TOKENS if option.secret and not option.name.endswith("_url") else SAFE_URLS) | argv_text
    good: list[st.SearchStrategy[str]] = []
    if option.choices:
        good.append(st.sampled_from([str(c) for c in option.choices]))
    if kind in ("duration", "since"):
        number = st.one_of(st.integers(-10, 10**10).map(str), floats.map(repr))
        unit = st.sampled_from(["", "s", "m", "h", "d", "w", "ms", " h"])
        good.append(st.tuples(number, unit).map("".join))
    if kind in ("time", "since"):
        good.append(times)
    if kind == "bytes":
        unit = st.sampled_from(["", "B", "K", "KiB", "M", "MiB", "G", "GiB", "T", "TiB", "PiB", "EiB", "mb"])
        good.append(st.tuples(st.one_of(big_ints.map(str), floats.map(repr)), unit).map("".join))
    if kind in ("int", "float"):
        good.append(st.one_of(big_ints.map(str), floats.map(repr)))
    if kind == "bool":
        good.append(st.sampled_from(["true", "false", "1", "0", "yes", "no", "on", "off", "maybe", "TRUE"]))
    if kind == "list":
        good.append(st.lists(argv_text, max_size=4).map(",".join))
    if kind == "pairs":
        good.append(st.lists(st.tuples(argv_text, argv_text).map("=".join), max_size=3).map(",".join))
    if option.name in ("deploy_sha", "rollback_sha", "prev_sha"):
        good.append(st.sampled_from([DEPLOY, ROLLBACK, DEPLOY.upper(), DEPLOY[:7], "g" * 40]))
    if option.name == "smoke_report":
        good.append(st.sampled_from([str(SMOKE), str(BAD_SMOKE), str(WORK / "missing.jsonl"), str(WORK)]))
    if option.name == "template":
        good.append(st.sampled_from(["azaion", "sev", "finance", "blameless", str(WORK / "none.md.j2"), "../x"]))
    # argv and the environment cannot carry NUL (the `timestamps` junk text may)
    return st.one_of(*good, st.sampled_from(NASTY), argv_text).map(lambda v: v.replace("\x00", ""))


def settings_for(names: Iterable[str]) -> st.SearchStrategy[list[tuple[str, str, bool]]]:
    """(option, value, as_flag) triples: each option given as a flag or as its env variable."""
    usable = sorted(n for n in names if n not in FIXED)
    one = st.sampled_from(usable).flatmap(lambda n: st.tuples(st.just(n), values(BY_NAME[n]), st.booleans()))
    return st.lists(one, max_size=6, unique_by=lambda t: t[0])


def env_only() -> st.SearchStrategy[list[tuple[str, str, bool]]]:
    usable = sorted(o.name for o in OPTIONS if o.name not in FIXED)
    one = st.sampled_from(usable).flatmap(lambda n: st.tuples(st.just(n), values(BY_NAME[n]), st.just(False)))
    return st.lists(one, max_size=8, unique_by=lambda t: t[0])


def command_line(
    command: list[str], chosen: list[tuple[str, str, bool]], flags_allowed: set[str]
) -> tuple[list[str], dict[str, str | None]]:
    args, env = list(command), dict(CLEAN_ENV)
    for name, value, as_flag in chosen:
        option = BY_NAME[name]
        if as_flag and name in flags_allowed:
            if option.kind == "bool":
                args.append(option.flag if value in ("true", "1", "yes", "on") else f"--no-{option.flag[2:]}")
            elif option.kind == "list":
                for item in value.split(",") or [""]:
                    args += [option.flag, item]
            else:
                args += [option.flag, value]
        else:
            env[option.env] = value
    return args, env


def invoke(target: str, args: list[str], env: dict[str, str | None], ok: Iterable[int] = (0, 2, 3)) -> Any:
    """Run one command line and check how it ended and what it left; counted in the fuzz tally."""
    TALLY.cases[target] += 1
    base = ["--config", str(CONFIG), "--state-dir", str(STATE)]
    before = ledger_fingerprint()
    try:
        result = CliRunner().invoke(cli, base + args, env=env, catch_exceptions=True)
    finally:
        configure()  # the command set our log level and format; the next case starts clean
    assert_nothing_half_written(args, env)
    out = result.output
    assert SECRET not in out, f"{args!r} {env_shown(env)}: a secret in the output\n{out}"
    broken = (
        # as the CLI says it (an input may hold these words, and be echoed in its refusal)
        re.search(r"(?m)^rollback-pm: internal error: ", out) is not None
        or "Traceback (most recent call last):" in out
        or not isinstance(result.exception, (SystemExit, type(None)))
    )
    if broken:
        TALLY.internal[target] += 1
        raise AssertionError(f"{args!r} {env_shown(env)}: internal error\n{out}\n{result.exception!r}")
    code = result.exit_code
    assert code in ok, f"{args!r} {env_shown(env)}: exit {code}\n{out}"
    if code == 2:
        TALLY.refused[target] += 1
        assert_names_what_to_fix(args, env, out)
        assert ledger_fingerprint() == before, f"{args!r} {env_shown(env)}: refused, yet the ledger changed\n{out}"
    else:
        TALLY.parsed[target] += 1
    return result


LEDGER = STATE / "ledger.sqlite3"
# the tables a command writes; a refused run must leave them as they were
WRITTEN = ("incidents", "smoke_steps", "evidence", "tickets", "outbox", "notifications", "events", "good_deploys")


def read_ledger() -> sqlite3.Connection | None:
    if not LEDGER.exists():
        return None
    return sqlite3.connect(f"file:{LEDGER}?mode=ro", uri=True)


def ledger_fingerprint() -> str:
    digest = hashlib.sha256()  # no ledger yet reads as empty tables: creating it is no write
    db = read_ledger()
    if db is None:
        return digest.hexdigest()
    try:
        for table in WRITTEN:
            for row in db.execute(f"SELECT * FROM {table} ORDER BY 1, 2"):
                digest.update(repr(row).encode())
        return digest.hexdigest()
    finally:
        db.close()


TEMP = re.compile(r"^\..*\.tmp(-\d+)?$")


def assert_nothing_half_written(args: list[str], env: dict[str, str | None]) -> None:
    """Every file under a final name in the scratch dirs is whole, and no temp file is left."""
    where = f"{args!r} {env_shown(env)}"
    for path in WORK.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        assert not TEMP.match(path.name), f"{where}: temp file left behind: {path}"
        if path.suffix == ".json":
            assert isinstance(json.loads(path.read_bytes()), dict), f"{where}: {path} is not a JSON object"
            assert SECRET.encode() not in path.read_bytes(), f"{where}: a secret in {path}"
        elif path.suffix == ".md" and path.parent == DRAFTS:
            assert path.read_text(encoding="utf-8").strip(), f"{where}: {path} is empty"
            assert SECRET not in path.read_text(encoding="utf-8"), f"{where}: a secret in {path}"
    db = read_ledger()
    if db is None:
        return
    try:
        assert db.execute("PRAGMA quick_check").fetchone() == ("ok",), f"{where}: the ledger fails its check"
        drafts = db.execute("SELECT id, draft_path, draft_sha256 FROM incidents WHERE draft_sha256 IS NOT NULL")
        for iid, draft, sha in drafts:
            written = hashlib.sha256(Path(draft).read_bytes()).hexdigest()
            assert written == sha, f"{where}: draft {draft} of {iid} is not the draft the ledger recorded"
    finally:
        db.close()


def env_shown(env: dict[str, str | None]) -> dict[str, str]:
    return {k: v[:60] for k, v in env.items() if v is not None}  # pytest's report, never the product's


def assert_names_what_to_fix(args: list[str], env: dict[str, str | None], out: str) -> None:
    """A refusal is one message that names a flag, a variable, a file or the value at fault."""
    message = out.strip().splitlines()[-1] if out.strip() else ""
    assert message.startswith(("rollback-pm: ", "Error: ")), out
    given = [a for a in args if a.startswith("--")] + [k for k, v in env.items() if v is not None]
    named = [g for g in given if g in out] + [a for a in args if len(a) > 2 and not a.startswith("-") and a in out]
    words = re.search(r"(?i)\b(sha|template|smoke report|incident|tracker|draft|ledger|option|argument|usage)\b", out)
    assert named or words, out


def with_corpus(test: Any, command: str, **others: Any) -> Any:
    """Start from the regression corpus's cases for ``command``."""
    for case in CLI:
        if case.command == command:
            test = example(chosen=list(case.settings), **others)(test)
    return test


FINALIZE = [*FINALIZE_ARGS, "--service", "api"]


@pytest.mark.parametrize("case", CLI, ids=[c.id for c in CLI])
def test_cli_corpus(case: Any) -> None:
    """Each regression case ends as recorded: refused (exit 2, one line naming what to fix,
    the ledger untouched), or run."""
    command = FINALIZE if case.command == "hook" else case.command.split()
    args, env = command_line(command, list(case.settings), {name for name, _, _ in case.settings})
    result = invoke(f"cli corpus {case.command}", args, env, ok=(2,) if case.refused else (0, 3))
    if case.refused:  # invoke checked that it names what to fix and left the ledger as it was
        assert len(result.output.splitlines()) == 1, result.output


HOOK_FLAGS = {*FACTS, *TICKETS, "template"} - {"drafts_dir", "repo_dir"}


@given(chosen=settings_for(HOOK_FLAGS))
def test_fuzz_cli_hook_finalize(chosen: list[tuple[str, str, bool]]) -> None:
    args, env = command_line(FINALIZE, chosen, HOOK_FLAGS)
    invoke("cli hook --phase finalize", args, env)


test_fuzz_cli_hook_finalize = with_corpus(test_fuzz_cli_hook_finalize, "hook")


CHECK_FLAGS = {*(n for n in TICKETS if n != "open_pr"), "warn_before", "webhook_url"}


@given(
    chosen=settings_for(CHECK_FLAGS),
    now=st.none() | times | st.sampled_from(NASTY),
    mode=st.sampled_from([[], ["--json"], ["--dry-run"], ["--quiet"], ["--json", "--dry-run"]]),
)
def test_fuzz_cli_check_deadlines(chosen: list[tuple[str, str, bool]], now: str | None, mode: list[str]) -> None:
    args, env = command_line(
        ["check-deadlines", *mode, *(["--now", now] if now is not None else [])], chosen, CHECK_FLAGS
    )
    result = invoke("cli check-deadlines", args, env, ok=(0, 1, 2, 3))
    if result.exit_code == 1 and "--quiet" not in mode:  # its own answer: something is overdue, and it says so
        assert "overdue" in result.output, result.output


@given(
    sub=st.sampled_from(["list", "show"]),
    extra=st.lists(
        st.tuples(st.sampled_from(["--service", "--env", "--status", "--since"]), argv_text | st.sampled_from(NASTY)),
        max_size=3,
    ),
    ident=known_ids | argv_text | st.sampled_from(["", "0", "abcd", "%", "_", "'; DROP TABLE incidents; --"]),
    as_json=st.booleans(),
    chosen=env_only(),
)
@example(sub="show", extra=[], ident="\udc80", as_json=False, chosen=[])  # found by fuzzing: internal errors
@example(sub="list", extra=[("--service", "a\udcff")], ident="", as_json=True, chosen=[])
def test_fuzz_cli_incidents(sub: str, extra: list[tuple[str, str]], ident: str, as_json: bool, chosen: Any) -> None:
    args = ["incidents", sub] + (["--json"] if as_json else [])
    if sub == "list":
        args += [x for pair in extra for x in pair]
    else:
        args.append(real(ident))
    _, env = command_line([], chosen, set())
    invoke(f"cli incidents {sub}", args, env)


@given(
    since=st.none() | values(BY_NAME["since"]),
    now=st.none() | times | st.sampled_from(NASTY),
    service=st.none() | argv_text,
    chosen=settings_for({"deadline_hours"}),
)
def test_fuzz_cli_report(since: str | None, now: str | None, service: str | None, chosen: Any) -> None:
    args = ["report", "--json"]
    for flag, value in (("--since", since), ("--now", now), ("--service", service)):
        if value is not None:
            args += [flag, value]
    args, env = command_line(args, chosen, {"deadline_hours"})
    invoke("cli report", args, env)


@given(chosen=env_only(), as_json=st.booleans())
def test_fuzz_cli_config_show(chosen: Any, as_json: bool) -> None:
    _, env = command_line([], chosen, set())
    invoke("cli config show", ["config", "show", *(["--json"] if as_json else [])], env, ok=(0, 2))


test_fuzz_cli_config_show = with_corpus(test_fuzz_cli_config_show, "config show", as_json=False)


@given(
    ident=known_ids | argv_text | st.sampled_from(["", "abcd", "%"]),
    chosen=settings_for({"template"}),
    force=st.booleans(),
)
@example(ident="\udc80", chosen=[], force=False)  # found by fuzzing: an internal UnicodeEncodeError
@example(ident="<api>", chosen=[("template", "9" * 5000, True)], force=True)  # an internal OSError
def test_fuzz_cli_draft(ident: str, chosen: Any, force: bool) -> None:
    args, env = command_line(
        ["draft", real(ident), "--drafts-dir", str(DRAFTS), *(["--force"] if force else [])], chosen, {"template"}
    )
    result = invoke("cli draft", args, env, ok=(0, 1, 2, 3) if ident == "<damaged>" else (0, 2, 3))
    if result.exit_code == 1:  # the damaged incident cannot be rendered: named, with the fix
        assert f"incident {SEEDED['web']} " in result.output and "ledger rebuild" in result.output, result.output


@given(
    now=st.none() | times | st.sampled_from(NASTY),
    deadline=st.none() | times | st.sampled_from(NASTY),
    files=st.lists(
        st.sampled_from([str(DRAFT), str(SMOKE), str(WORK), str(WORK / "missing.md"), "/dev/null"]),
        min_size=1,
        max_size=3,
    ),
)
def test_fuzz_cli_lint(now: str | None, deadline: str | None, files: list[str]) -> None:
    args = ["lint", *files]
    for flag, value in (("--now", now), ("--deadline", deadline)):
        if value is not None:
            args += [flag, value]
    result = invoke("cli lint", args, dict(CLEAN_ENV), ok=(0, 1, 2))
    if result.exit_code == 1:  # its own answer: the postmortem has findings, listed
        assert re.search(r":\d+: ", result.output), result.output


COLLECT_FLAGS = {*SELECTION, *COLLECTION} - {"label", "name", "compose_project", "container"}


@pytest.mark.docker
@given(chosen=settings_for(COLLECT_FLAGS), phase=st.sampled_from(["collect", "hook-collect", "hook-both"]))
def test_fuzz_cli_collect_and_hook_with_docker(docker_engine: None, chosen: Any, phase: str) -> None:
    """Against the real engine: whatever the collection settings, a selection that matches
    nothing is exit 2 naming it, bad values are exit 2 naming the flag; a floor above the free
    space (--min-free-mb) is the collection's own failure, exit 1, saying what to lower."""
    command = {
        "collect": ["collect", "--label", NOBODY],
        "hook-collect": ["hook", "--phase", "collect", "--label", NOBODY, "--service", "api", "--deploy-sha", DEPLOY],
        "hook-both": ["hook", "--label", NOBODY, *FINALIZE[3:]],  # every phase
    }[phase]
    args, env = command_line(command, chosen, COLLECT_FLAGS)
    env["ROLLBACK_PM_EVIDENCE_DIR"] = str(WORK / "evidence")
    result = invoke(f"cli {phase}", args, env, ok=(0, 1, 2, 3))
    if result.exit_code == 1:
        assert result.output.startswith("rollback-pm: ") and "--min-free-mb" in result.output, result.output
