"""An independent judge of what we wrote: Yelp's detect-secrets scans it.

The redaction rules are ours; a test that only checks them with our own idea of a secret
shares their blind spots. detect-secrets (its default plugins: AWS, GitHub, GitLab, Slack,
Stripe, PyPI, npm, JWT, private keys, basic auth, secret keywords, high-entropy strings …)
scans every file a secret test produced, and every finding must be a documented false
positive:

``Hex High Entropy String`` on a 12-, 40- or 64-character hex identifier
    container and image ids, sha256 digests (the manifest's file checksums, image
    digests) and git SHAs are what a postmortem is about; they are not secrets and stay.
``Base64 High Entropy String`` on a path whose only random part is such an identifier
    (``/var/lib/docker/containers/<container id>/hostname`` in the inspect document).
``Private Key`` on a PEM marker whose body is masked
    the redaction keeps ``-----BEGIN … PRIVATE KEY-----`` (it tells the reader a key was
    there) and masks the body; the plugin flags the marker line itself.

Anything else is a leak (or a new false positive to document here, with its reason).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from detect_secrets import SecretsCollection
from detect_secrets.settings import default_settings

_HEX_ID = re.compile(r"(?<![0-9a-f])(?:[0-9a-f]{64}|[0-9a-f]{40}|[0-9a-f]{12})(?![0-9a-f])")
_PATH_WORDS = re.compile(r"[A-Za-z/._-]*")  # what is left of a path once its hex identifiers are gone
_PEM_MARKER = re.compile(r"BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY")


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    type: str
    value: str


def scan(paths: list[Path]) -> list[Finding]:
    """Every finding of detect-secrets' default plugins in these files."""
    collection = SecretsCollection()
    with default_settings():
        for path in paths:
            collection.scan_file(str(path))
    return [Finding(name, secret.line_number, secret.type, secret.secret_value or "") for name, secret in collection]


def documented_false_positive(finding: Finding, lines: dict[str, list[str]]) -> bool:
    if finding.type == "Hex High Entropy String":
        return bool(_HEX_ID.fullmatch(finding.value))
    if finding.type == "Base64 High Entropy String":
        return "/" in finding.value and bool(_PATH_WORDS.fullmatch(_HEX_ID.sub("", finding.value)))
    if finding.type == "Private Key":
        line = lines[finding.path][finding.line - 1] if finding.line else ""
        body = re.sub(r"-----(?:BEGIN|END) (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----", "", line)
        return bool(_PEM_MARKER.fullmatch(finding.value)) and "[REDACTED]" in body + _next(lines, finding)
    return False


def _next(lines: dict[str, list[str]], finding: Finding) -> str:
    text = lines[finding.path]
    return text[finding.line] if finding.line < len(text) else ""


def leaks(paths: list[Path]) -> list[Finding]:
    """The findings that are not documented false positives."""
    lines = {str(p): p.read_text(errors="replace").splitlines() for p in paths}
    return [f for f in scan(paths) if not documented_false_positive(f, lines)]
