"""Canary secrets planted everywhere a container keeps them must reach no file and no log line."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from rollback_pm import log
from rollback_pm.evidence import CollectOptions, Selection, collect, finalize, freeze
from tests.support.docker_images import ensure_busybox_image

pytestmark = pytest.mark.docker

PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC-pem-Canary-66"
CANARIES = {
    "DB_PASSWORD": "env-Canary-11",
    "MyPassword": "env-Canary-12",
    "GITHUB_TOKEN": "ghp_env-Canary-13",
    "AWS_SECRET_ACCESS_KEY": "env-Canary-14/abc+def",
    "api_key": "env-Canary-15",
}
OTHER_CANARIES = [
    "cmd-Canary-22",
    "label-Canary-33",
    "url-Canary-44",
    "bearer-Canary-55xyz",
    "pem-Canary-66",
    "image-Canary-77",
    "logonly-Canary-88",
    "hc-Canary-99abc",
    "escaped-Canary-67",
]
KEPT = ["KEY_COUNT=3", "TOKEN_TTL_SECONDS=300", "PASSWORD_MIN_LENGTH=12"]

SCRIPT = r"""
echo "start $0 $1"
echo "connecting with $DB_PASSWORD and $MyPassword"
echo "tokens: $GITHUB_TOKEN $AWS_SECRET_ACCESS_KEY $api_key" >&2
echo "db at postgres://app:url-Canary-44@db/app"
echo "GET /x Authorization: Bearer bearer-Canary-55xyz" >&2
echo "login password=logonly-Canary-88 failed"
echo "loaded key:"; echo "$TLS_KEY"
printf '{"msg":"cfg","pem":"-----BEGIN PRIVATE KEY-----\\nMIIEescaped-Canary-67\\n-----END PRIVATE KEY-----\\n"}\n'
echo "KEY_COUNT=3 TOKEN_TTL_SECONDS=300 PASSWORD_MIN_LENGTH=12"
echo done
"""


@pytest.fixture()
def canary_image(busybox_image):
    import docker

    tag = "rollback-pm-test/busybox:evidence-canary"
    ensure_busybox_image(
        tag, labels={"org.opencontainers.image.revision": "0123abc", "com.example.deploy_token": "image-Canary-77"}
    )
    yield tag
    docker.APIClient(version="auto").remove_image(tag, force=True)


@pytest.mark.parametrize("fast_path", ["auto", "never", "frozen"])
def test_canaries_reach_no_file_and_no_log_line(tmp_path, tmp_path_factory, containers, canary_image, fast_path):
    """``frozen``: the hook's two phases; the raw bytes wait in the spool, which the finalize deletes."""
    containers.image = canary_image
    env = {
        **CANARIES,
        "KEY_COUNT": "3",
        "TOKEN_TTL_SECONDS": "300",
        "PASSWORD_MIN_LENGTH": "12",
        "DATABASE_URL": "postgres://app:url-Canary-44@db/app",
        "TLS_KEY": f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\nAbCdEfGhIjKlMnOpQrStUvWxYz012345\n-----END RSA PRIVATE KEY-----",
    }
    containers.run(
        "app",
        command=["sh", "-c", SCRIPT, "--password", "cmd-Canary-22"],
        env=env,
        labels={"com.example.api_token": "label-Canary-33", "com.example.team": "payments"},
        healthcheck={
            "test": ["CMD", "sh", "-c", "wget --header 'Authorization: Bearer hc-Canary-99abc' localhost"],
            "interval": 60_000_000_000,
        },
    )
    stream = io.StringIO()
    log.configure("json", "debug", stream=stream)
    state = tmp_path_factory.mktemp("state")
    try:
        selection = Selection(name_regex=f"{containers.prefix}.*")
        if fast_path == "frozen":
            frozen = freeze(selection, CollectOptions(evidence_dir=tmp_path), state, key="k")
            assert frozen is not None
            assert CANARIES["DB_PASSWORD"].encode() in (frozen.spool / "docs.json").read_bytes()  # raw, in the spool
            [result] = finalize(state, key="k")
            assert os.listdir(state / "spool") == []
        else:
            result = collect(selection, CollectOptions(evidence_dir=tmp_path, fast_path=fast_path))
        log.get_logger("test").info("after", found=list(log.known_secrets()), env=env)
    finally:
        log.configure()

    assert not result.degraded, result.errors
    files = {p.name: p.read_text() for p in tmp_path.iterdir()}
    assert len(files) == 3
    written = (
        "\n".join(files.values()) + stream.getvalue() + json.dumps(result.inspect_docs) + json.dumps(result.image_docs)
    )
    for canary in [*CANARIES.values(), *OTHER_CANARIES, PEM_BODY]:
        assert canary not in written, canary
    assert {*CANARIES.values(), "cmd-Canary-22", "label-Canary-33", "url-Canary-44"} <= log.known_secrets()

    text = Path(result.file("log").path).read_text()
    assert "connecting with [REDACTED] and [REDACTED]" in text
    assert "postgres://app:[REDACTED]@db/app" in text and "Authorization: Bearer [REDACTED]" in text
    assert "password=[REDACTED] failed" in text and " ".join(KEPT) in text and " done\n" in text
    assert "-----BEGIN PRIVATE KEY-----[REDACTED]-----END PRIVATE KEY-----" in text
    # stdout only: Docker copies stderr in a goroutine of its own, so a stderr line written
    # before the key can land among its lines.
    pem_lines = [line.split(" ", 3)[3] for line in text.splitlines() if line.split(" ", 2)[1] == "stdout"]
    begin = pem_lines.index("-----BEGIN RSA PRIVATE KEY-----")
    assert pem_lines[begin : begin + 4] == [
        "-----BEGIN RSA PRIVATE KEY-----",
        "[REDACTED]",
        "[REDACTED]",
        "-----END RSA PRIVATE KEY-----",
    ]

    [doc] = result.inspect_docs
    env_out = doc["Config"]["Env"]
    for key in CANARIES:
        assert f"{key}=[REDACTED]" in env_out
    assert all(k in env_out for k in KEPT)
    assert doc["Config"]["Labels"]["com.example.api_token"] == "[REDACTED]"
    assert doc["Config"]["Labels"]["com.example.team"] == "payments"
    assert doc["Config"]["Cmd"][-2:] == ["--password", "[REDACTED]"]
    summary = doc["ImageSummary"]
    assert summary["Labels"] == {
        "org.opencontainers.image.revision": "0123abc",
        "com.example.deploy_token": "[REDACTED]",
    }
    counts = json.loads(files[Path(result.file("manifest").path).name])["redaction"]["counts"]
    assert counts["known-value"] >= 6 and counts["secret-key"] >= 8 and counts["bearer"] >= 2
    assert counts["url-userinfo"] >= 2 and counts["pem-private-key"] >= 2
    assert result.redaction_counts == counts
