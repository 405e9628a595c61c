"""Fuzz the config file loader: every TOML file (or any bytes) gives Settings or a
ConfigError (exit 2) naming the file or the key; nothing else."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from rollback_pm.config import BY_NAME, load_settings
from rollback_pm.errors import EXIT_USAGE, UsageError
from tests.fuzz.corpus import CONFIG
from tests.fuzz.scratch import scratch_dir
from tests.fuzz.strategies import toml_documents
from tests.fuzz.tally import TALLY, is_error

WORKDIR = scratch_dir("config")


def check_config(content: bytes) -> None:
    path = WORKDIR / "config.toml"
    path.write_bytes(content)
    outcome = TALLY.run("config file", lambda: load_settings({}, env={}, config_path=path), UsageError)
    if is_error(outcome):
        assert isinstance(outcome, UsageError) and outcome.exit_code == EXIT_USAGE
        message = str(outcome)
        # names the file, or the setting that is wrong
        names = [*BY_NAME, *(f"--{name.replace('_', '-')}" for name in BY_NAME)]
        assert "config" in message or any(name in message for name in names), message


def with_corpus(test):
    for case in CONFIG:
        test = example(case.content)(test)
    return test


@given(toml_documents.map(str.encode))
@with_corpus
def test_fuzz_config_documents(content: bytes) -> None:
    check_config(content)


@given(st.binary(max_size=2000) | st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_fuzz_config_bytes(content: bytes) -> None:
    check_config(content)
