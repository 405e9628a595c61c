"""Our own logs: registered secrets become ***, and the redaction rules catch the rest."""

from __future__ import annotations

import io
import json
import subprocess
import sys

from rollback_pm import log
from tests.support.canaries import canaries


def test_mask_applies_registered_secrets_then_the_rules():
    log.register_secret("registered-Tok-31337")
    assert log.mask("sent registered-Tok-31337 to the tracker") == "sent *** to the tracker"
    assert log.mask("token=registered-Tok-31337") == "token=***"  # masked once, not twice
    assert log.mask("curl -u admin:Curl-Pw-9 https://x") == "curl -u admin:[REDACTED] https://x"
    assert log.mask("deploy 9fceb02d0ae598e95dc970b74767f19372d61af8 ok") == (
        "deploy 9fceb02d0ae598e95dc970b74767f19372d61af8 ok"
    )


def test_json_log_lines_hold_no_canary():
    stream = io.StringIO()
    log.configure("json", "debug", stream=stream)
    try:
        logger = log.get_logger("test")
        for canary in canaries("J"):
            logger.warning(f"step said {canary.text}", detail={"output": canary.text}, lines=[canary.text])
            logger.error("failed", exc_info=RuntimeError(canary.text))
    finally:
        log.configure()
    out = stream.getvalue()
    assert all(json.loads(line) for line in out.splitlines())
    for canary in canaries("J"):
        assert canary.secret not in out, canary.fmt


def test_every_command_gets_the_rules_not_only_those_that_import_the_evidence(tmp_path):
    # `lint`, `check-deadlines` and `ticket flush` never import the evidence package: their
    # logs must still mask token formats nobody registered
    program = (
        "import sys\n"
        "from rollback_pm import log\n"
        "print(log.mask(sys.argv[1]))\n"
        "print('rollback_pm.evidence' in sys.modules)\n"
    )
    key, token = "AKIA" + "QX7V2LJ4ZK3M5PNB", "ghp_" + "Zq8Xw3Vt6Rk1Lm9Np2Bc5Df7Gh0Jk4Ls6Qa7Y"
    result = subprocess.run(
        [sys.executable, "-c", program, f"aws {key} and {token} in a step"],
        capture_output=True,
        text=True,
        check=True,
    )
    masked, evidence_loaded = result.stdout.splitlines()
    assert key not in masked and token not in masked and masked.count("[REDACTED]") == 2
    assert evidence_loaded == "False"
