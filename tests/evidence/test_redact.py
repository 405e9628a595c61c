import pytest

from rollback_pm.evidence.redact import MASK, LineRedactor, Redactor, is_secret_key


@pytest.mark.parametrize("key", ["DB_PASSWORD", "MyPassword", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "api_key",
                                 "apiKey", "splunk-token", "--db-password", "SENTRY_DSN", "BASIC_AUTH",
                                 "client_secret", "PRIVATE_KEY", "jwt"])
def test_secret_keys(key):
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["KEY_COUNT", "TOKEN_TTL_SECONDS", "PASSWORD_MIN_LENGTH", "POOL_SIZE", "MONKEY",
                                 "DB_PASSWORD_FILE", "AUTH_ENABLED", "TOKENIZER", "PATH", "HOSTNAME"])
def test_not_secret_keys(key):
    assert not is_secret_key(key)


def test_document_masks_config_and_keeps_the_rest():
    doc = {
        "Config": {
            "Env": ["DB_PASSWORD=hunter2hunter2", "KEY_COUNT=3", "TOKEN_TTL_SECONDS=300", "PASSWORD_MIN_LENGTH=12",
                    "DATABASE_URL=postgres://app:pg-Secret-1@db/app", "REDIS_URL=redis://:redis-Secret-2@cache:6379"],
            "Labels": {"com.example.api_token": "label-Secret-3", "com.docker.compose.service": "api"},
            "Cmd": ["serve", "--password", "cmd-Secret-4", "--token=cmd-Secret-5", "--workers", "4"],
            "Healthcheck": {"Test": ["CMD", "curl", "-H", "Authorization: Bearer hc-Secret-6abcdef", "localhost"]},
        },
        "HostConfig": {"LogConfig": {"Type": "splunk", "Config": {"splunk-token": "splunk-Secret-7",
                                                                  "splunk-url": "https://splunk:8088"}}},
        "Args": ["-----BEGIN RSA PRIVATE KEY-----\\nMIIEpem-Secret-8\\n-----END RSA PRIVATE KEY-----"],
    }
    redactor = Redactor()
    redactor.learn(doc)
    out = repr(redactor.document(doc))
    for n, canary in enumerate(["hunter2hunter2", "pg-Secret-1", "redis-Secret-2", "label-Secret-3", "cmd-Secret-4",
                                "cmd-Secret-5", "hc-Secret-6abcdef", "splunk-Secret-7", "pem-Secret-8"], 1):
        assert canary not in out, canary
    for kept in ["KEY_COUNT=3", "TOKEN_TTL_SECONDS=300", "PASSWORD_MIN_LENGTH=12", "'--workers', '4'",
                 "postgres://app:[REDACTED]@db/app", "redis://:[REDACTED]@cache:6379", "https://splunk:8088",
                 "'com.docker.compose.service': 'api'"]:
        assert kept in out, kept
    # URL passwords were learnt from the config first, so they count as known values
    assert redactor.counts["secret-key"] >= 4 and redactor.counts["known-value"] >= 2
    assert "pem-private-key" in redactor.counts


def test_known_values_are_masked_in_log_lines():
    redactor = Redactor()
    redactor.learn({"Config": {"Env": ["DB_PASSWORD=hunter2hunter2"]}})
    lines = LineRedactor(redactor)
    assert lines.line("login with hunter2hunter2 failed") == f"login with {MASK} failed"
    assert lines.line("GET / Authorization: Bearer abcdefgh12345") == f"GET / Authorization: Bearer {MASK}"
    assert lines.line("retries=3 password=swordfish") == f"retries=3 password={MASK}"
    assert lines.line("pool size 10, ok") == "pool size 10, ok"


def test_pem_block_across_log_lines():
    lines = LineRedactor(Redactor())
    out = [lines.line(x) for x in ["key follows: -----BEGIN PRIVATE KEY-----", "MIIEvQIBADANBgkq", "AbCdEf==",
                                   "-----END PRIVATE KEY-----", "after"]]
    assert out == [f"key follows: {MASK}", MASK, MASK, MASK, "after"]
