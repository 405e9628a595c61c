"""The Debian test image is built from the mirror apt already uses: reading it from the sources."""

from __future__ import annotations

import pytest

from tests.support.debian_image import DebianImageError, apt_mirror


def test_mirror_from_deb822_sources_skips_security_and_disabled(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n\n"
        "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n\n"
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"
    )
    assert apt_mirror(tmp_path) == "http://mirror.example/debian"


def test_mirror_from_a_one_line_sources_list(tmp_path):
    (tmp_path / "sources.list").write_text(
        "# deb http://old.example/debian bookworm main\n"
        "deb http://security.example/debian-security bookworm-security main\n"
        "deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://mirror.example/debian/ bookworm main\n"
    )
    assert apt_mirror(tmp_path) == "http://mirror.example/debian/"


def test_no_debian_source_is_a_clear_error(tmp_path):
    (tmp_path / "sources.list").write_text("deb https://packages.example/apt cloud-sdk main\n")
    with pytest.raises(
        DebianImageError, match="no Debian archive found in .*: add a 'deb <mirror>/debian bookworm main'"
    ):
        apt_mirror(tmp_path)
