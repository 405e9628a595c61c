"""The TOML config file is bounded like every other input: size, nesting, number length,
and only a regular file is read. Each case is a ConfigError (exit 2) naming the file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rollback_pm.config import load_settings
from rollback_pm.errors import EXIT_USAGE, ConfigError


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings({}, env={}, config_path=path)
    assert caught.value.exit_code == EXIT_USAGE
    return str(caught.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"# a comment\n" + b" " * (1024 * 1024),
            "is larger than 1 MiB; is --config / ROLLBACK_PM_CONFIG the right file?",
        ),
        (
            b"timeout = " + b"[" * 5000 + b"]" * 5000 + b"\n",
            "nests arrays or tables deeper than rollback-pm reads; a config needs no more than "
            "[environments.<env>] tables",
        ),
        (
            b"x = " + b"{a = " * 3000 + b"1" + b"}" * 3000 + b"\n",
            "nests arrays or tables deeper than rollback-pm reads; a config needs no more than "
            "[environments.<env>] tables",
        ),
        (b"min_free_mb = " + b"9" * 5000 + b"\n", "holds a number of more than 4300 digits; no setting needs one"),
    ],
    ids=["over-one-mib", "deep-array", "deep-inline-table", "5000-digit-number"],
)
def test_oversized_or_overnested_files_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(content)
    assert error_of(path) == f"config file {path} {message}"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'owner = "caf\xe9"\n')
    assert error_of(path).startswith(f"config file {path} cannot be read: 'utf-8' codec can't decode byte 0xe9")


def test_a_directory_or_a_fifo_is_not_read(tmp_path: Path) -> None:
    assert error_of(tmp_path) == f"config file {tmp_path} is not a regular file; fix --config / ROLLBACK_PM_CONFIG"
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)  # reading it would block forever
    assert error_of(fifo) == f"config file {fifo} is not a regular file; fix --config / ROLLBACK_PM_CONFIG"


def test_dev_null_is_an_empty_config(tmp_path: Path) -> None:
    assert load_settings({}, env={}, config_path=os.devnull).owner is None


def test_a_symlinked_config_file_is_read(tmp_path: Path) -> None:
    """Config files are often links (a configmap, /etc alternatives): reading through one is fine."""
    real = tmp_path / "real.toml"
    real.write_text('owner = "@alice"\n')
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    assert load_settings({}, env={}, config_path=link).owner == "@alice"


def test_just_under_the_bound_is_read(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'owner = "@alice"\n' + b"#" * (1024 * 1024 - 20) + b"\n")
    assert load_settings({}, env={}, config_path=path).owner == "@alice"
