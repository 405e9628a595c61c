"""Test support: a spec-validating loopback HTTP server and stateful fakes built on it."""

from pathlib import Path

SPECS = Path(__file__).resolve().parent.parent / "specs"
