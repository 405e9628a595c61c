"""Value patterns, command lines, keyed forms and high-entropy values: both sides of every rule.

Must-mask cases name the secret that may not survive and the rule that counts it;
must-keep cases (git SHAs, digests, container ids, UUIDs, timestamps, ordinary base64,
port flags) come out unchanged. Hypothesis then checks both sides on generated values,
and that the log-batch gate never skips a line the text rules would change.
"""

from __future__ import annotations

import base64
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollback_pm.redact import MASK, LogRedactor, Redactor, redact_documents, redact_text

TS = b"2026-05-13T08:47:21.123456789Z "
ALNUM = string.ascii_letters + string.digits

# Well-known formats, built here so that no real-looking token sits in the source.
AKIA = "AKIA" + "IOSFODNN7Q2ZXB4K"
ASIA = "ASIA" + "Y34FZKBOKMUTVV7A"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Hk2Lm4N"
GCP_KEY = "AIza" + "SyD4x7Qk2mN8pL5rT1vW3yZ6bC9eF0gH2jK"
GCP_OAUTH = "GOCSPX-" + "Ab3dEf6hIj9lMn2pQr5tUv8xYz1B"
GCP_ACCESS = "ya29." + "a0AfH6SMBx7Qk2mN8pL5rT1vW3yZ6bC9e"
AZURE_SECRET = "kR2" + "8Q~" + "Zx4vB7nM1qW3eR5tY6uI8oP0aS2dF4gH6j"  # 40 characters
AZURE_SAS = (
    "https://acct.blob.core.windows.net/c/f?sv=2022-11-02&sp=r&sig=" + "q3Xb8Ns%2BkPz4Lm7Vw9Ty1Rc5Hd2Gf6Jk0Aa8Ee4Ii%3D"
)
GHP = "ghp_" + "R2d2C3p0" * 4 + "Xy9Z"
GHO = "gho_" + "a1B2c3D4" * 4 + "e5F6"
GHS = "ghs_" + "Zz9Yy8Xx" * 4 + "Ww7V"
GHU = "ghu_" + "Q1w2E3r4" * 4 + "T5y6"
GHR = "ghr_" + "M9n8B7v6" * 4 + "C5x4"
GITHUB_PAT = "github_pat_" + "11ABCDEFG0" + "_" + "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hI6kL9nO2qR5tU8wX1zA4cD7fG0"
GLPAT = "glpat-" + "xY7zK9mQ2vL4nB8pR3tW"
SLACK_BOT = "xoxb-" + "2893746510-4827361950274-" + "kR8mQ2vL4nB8pR3tWxY7zK9m"
SLACK_USER = "xoxp-" + "2893746510-4827361950-4827361950274-" + "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
SLACK_HOOK = "https://hooks.slack.com/services/" + "T0ABCD123/B0EFGH456/" + "kR8mQ2vL4nB8pR3tWxY7zK9m"
STRIPE_LIVE = "sk_live_" + "51HbC9dKz8mQ2vL4nB8pR3tWxY7"
STRIPE_RESTRICTED = "rk_live_" + "51HbC9dKz8mQ2vL4nB8pR3tWxY7"
NPM = "npm_" + "kR8mQ2vL4nB8pR3tWxY7zK9mA1b2C3d4E5f6"
PYPI = "pypi-" + "AgEIcHlwaS5vcmc" + "CJGQ5ZmE3ZjE0LTk0YjMtNGJkOC1hYzEwLWI2ZDE5ZjNhNmM0YQACKlszLCJmNGIzIl0"
DOCKER_PAT = "dckr_pat_" + "kR8mQ2vL4nB8pR3tWxY7zK9mA1b"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    + ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6ImNhbmFyeSJ9"
    + ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
RANDOM_PASSWORD = "Xk9" + "vQ2mT7pL4zR8wN"

MUST_MASK = [
    # (text, the secret that must not survive, the rule that counts it)
    (f"AWS_ACCESS_KEY_ID={AKIA}", AKIA, "aws-access-key-id"),
    (f"creds {ASIA} expire soon", ASIA, "aws-access-key-id"),
    (f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET, "secret-key"),
    (f"aws_secret_access_key={AWS_SECRET}", AWS_SECRET, "secret-key"),
    (f"maps {GCP_KEY} loaded", GCP_KEY, "gcp-api-key"),
    (f'{{"client_id": "x", "installed": "{GCP_OAUTH}"}}', GCP_OAUTH, "gcp-oauth"),
    (f"using {GCP_ACCESS}", GCP_ACCESS, "gcp-oauth"),
    (f"AZURE_CLIENT_ID=1 value {AZURE_SECRET}", AZURE_SECRET, "azure-client-secret"),
    (f"GET {AZURE_SAS} 200", AZURE_SAS.split("sig=")[1], "azure-sas"),
    (
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + "kR8mQ2vL4nB8pR3tWxY7zK9mA1b2C3d4==;X=y",
        "kR8mQ2vL4nB8pR3tWxY7zK9mA1b2C3d4==",
        "secret-key",
    ),
    (f"remote https://github.com/o/r uses {GHP}", GHP, "github-token"),
    (f"oauth={GHO}", GHO, "github-token"),
    (f"app token: {GHS}", GHS, "github-token"),
    (f"UPSTREAM={GHU}", GHU, "github-token"),
    (f"refresh {GHR}.", GHR, "github-token"),
    (f"CI uses {GITHUB_PAT}", GITHUB_PAT, "github-token"),
    (f"gitlab {GLPAT} ok", GLPAT, "gitlab-token"),
    (f"slack {SLACK_BOT}", SLACK_BOT, "slack-token"),
    (f"NOTIFY={SLACK_USER}", SLACK_USER, "slack-token"),
    (f"posting to {SLACK_HOOK}", SLACK_HOOK.rsplit("services/", 1)[1], "webhook-url"),
    (f"charge via {STRIPE_LIVE}", STRIPE_LIVE, "stripe-key"),
    (f"refund via {STRIPE_RESTRICTED}", STRIPE_RESTRICTED, "stripe-key"),
    (f"//registry.npmjs.org/:_authToken={NPM}", NPM, "npm-token"),
    (f"publish with {NPM}", NPM, "npm-token"),
    (f"twine upload -p {PYPI}", PYPI, "pypi-token"),
    (f"registry login {DOCKER_PAT}", DOCKER_PAT, "docker-token"),
    (f"SESSION={JWT}", JWT, "jwt"),
    (f"cookie jar holds {JWT} now", JWT, "jwt"),
    ("curl -u admin:s3cret-Pw https://api.internal/health", "s3cret-Pw", "command-line"),
    ("curl -s --user 'deploy:pass with space' https://x", "pass with space", "command-line"),
    ("curl -uadmin:hunter22 https://x", "hunter22", "command-line"),
    ("mysql -h db -u root -pPASSw0rd shop", "PASSw0rd", "command-line"),
    ("mysqldump -uroot -p'my secret' shop > dump.sql", "my secret", "command-line"),
    ("docker login -u ci -p Regi5try-Pw registry.internal", "Regi5try-Pw", "command-line"),
    ("sshpass -p S5hPass ssh deploy@host", "S5hPass", "command-line"),
    ("redis-cli -h cache -a R3disPw ping", "R3disPw", "command-line"),
    ("openssl pkcs12 -in a.p12 -passin pass:P12pass -nodes", "P12pass", "command-line"),
    ("app --password=Flag-Pw1 --port 80", "Flag-Pw1", "secret-key"),
    ("app --password Flag-Pw2 --port 80", "Flag-Pw2", "secret-key"),
    ("app --token Flag-Tok3 --verbose", "Flag-Tok3", "secret-key"),
    ("password = hunter2", "hunter2", "secret-key"),
    ('password: "quoted value with spaces"', "quoted value with spaces", "secret-key"),
    ("db_password: 'single quoted words'", "single quoted words", "secret-key"),
    ('{"password": "json value with spaces"}', "json value with spaces", "secret-key"),
    ('secret => "ruby hash value"', "ruby hash value", "secret-key"),
    (f"cannot reach postgres with password {RANDOM_PASSWORD} on db:5432", RANDOM_PASSWORD, "high-entropy"),
    ("api token is 9f8e7d6c5b4a39281706f5e4d3c2b1a0", "9f8e7d6c5b4a39281706f5e4d3c2b1a0", "high-entropy"),
    ("session_id=8f14e45fceea167a5a36dedd4bea2543 status=200", "8f14e45fceea167a5a36dedd4bea2543", "high-entropy"),
    ("JSESSIONID=A1B2C3D4E5F6A7B8C9D0E1F2A3B4C5D6", "A1B2C3D4E5F6A7B8C9D0E1F2A3B4C5D6", "high-entropy"),
    ("key=kR8mQ2vL4nB8pR3tWxY7zK9m", "kR8mQ2vL4nB8pR3tWxY7zK9m", "high-entropy"),
    (
        "GET /f?X-Amz-Signature=" + "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
        "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
        "high-entropy",
    ),
]

MUST_KEEP = [
    "deploy 1111111111111111111111111111111111111111 -> rollback 2222222222222222222222222222222222222222",
    "commit=9fceb02d0ae598e95dc970b74767f19372d61af8 sha: 4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39 build=4f2a9c1",
    "image=registry.example.com/app@sha256:6f0c1cb49b7e7dd2b2a7f5d1a4a3c9e1f0b8d7c6a5e4f3b2a1c0d9e8f7a6b5c4",
    '"Image": "sha256:0d9e8f7a6b5c46f0c1cb49b7e7dd2b2a7f5d1a4a3c9e1f0b8d7c6a5e4f3b2a1c"',
    "container 3f4e5d6c7b8a90112233445566778899aabbccddeeff00112233445566778899 (3f4e5d6c7b8a) exited 137",
    "request_id=123e4567-e89b-12d3-a456-426614174000 X-Request-Id: 3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7 sampled=1",
    "at 2026-05-13T08:47:21.123456789Z ts=1715590041 took 2026-05-13 08:47:21,123",
    "payload=eyJvcmRlciI6IDQyLCAic3RhdHVzIjogInBhaWQifQ== data: SGVsbG8sIFdvcmxkIQ==",
    "blob dGhpcyBpcyBub3QgYSBzZWNyZXQgYXQgYWxsLCBqdXN0IGJhc2U2NA== etag W/5f3a",
    "docker run -u 1000:1000 -p 8080:80 app; ssh -p 2222 deploy@host; redis-cli -p 6379 ping",
    "mysql -p shop < schema.sql",
    "curl -fsS https://example.com/health -o /dev/null",
    "KEY_COUNT=3 TOKEN_TTL_SECONDS=300 PASSWORD_MIN_LENGTH=12 session_ttl=3600 sessions=42",
    "signature_algorithm=HMAC-SHA256 token_type=Bearer",
    "if token == null then fail; password reset requested for user 5521",
    "login failed for user bob from ASIA-PACIFIC region, glpat- prefix, xoxb- prefix, sk_live_ prefix",
    "password reset link sent; token expired at 2026-05-13T10:00:00Z",
    "received sig=SIGTERM, exiting",
    "consumed topic=orders.v1 partition=7 offset=18823412 key=order-83421 lag=0",  # a message key
    "curl --cert client.crt --key client.key https://mtls.internal/health",
    "KeyError: 'DATABASE_URL' TokenExpiredError: 'token expired' password_status: 'expired'",  # errors, not secrets
]


@pytest.mark.parametrize(
    ("text", "secret", "rule"), MUST_MASK, ids=[case[2] + ":" + case[0][:30] for case in MUST_MASK]
)
def test_must_mask(text, secret, rule):
    redactor = Redactor()
    out = redactor.text(text)
    assert secret not in out, out
    assert MASK in out
    assert redactor.counts[rule] >= 1, dict(redactor.counts)
    assert secret not in repr(dict(redactor.counts))  # counts, never values


@pytest.mark.parametrize("text", MUST_KEEP)
def test_must_keep(text):
    redactor = Redactor()
    assert redactor.text(text) == text
    assert not redactor.counts


def test_quoted_values_keep_their_quotes():
    assert redact_text('password: "quoted value with spaces"') == f'password: "{MASK}"'
    assert redact_text("password = 'a b'") == f"password = '{MASK}'"
    assert redact_text("curl -u 'u:p w' x") == f"curl -u 'u:{MASK}' x"


def test_already_masked_values_are_left_alone():
    for text in ["password=***", "Authorization: ***", "postgres://u:***@db", f"token: {MASK}", "secret: '****'"]:
        redactor = Redactor()
        assert redactor.text(text) == text and not redactor.counts


def test_innocuous_env_names_labels_and_split_command_lines_in_documents():
    doc = {
        "Config": {
            "Env": [
                f"AWS_ACCESS_KEY_ID={AKIA}",
                f"UPSTREAM={GHP}",
                f"SESSION={JWT}",
                f"NOTIFY_URL={SLACK_HOOK}",
                "SESSION_TTL=3600",
                "GIT_SHA=9fceb02d0ae598e95dc970b74767f19372d61af8",
                "REQUEST_ID=123e4567-e89b-12d3-a456-426614174000",
            ],
            "Labels": {"com.example.billing": STRIPE_LIVE, "org.opencontainers.image.revision": "4f2a9c1e8b7d"},
            "Cmd": ["mysql", "-uroot", "-pPASSw0rd", "shop"],
            "Entrypoint": ["curl", "-u", "admin:Curl-Pw9", "https://api"],
        },
        "Args": ["--user", "root:notapassword"],  # not a curl command line: kept
    }
    [out], redactor, [error] = redact_documents([doc])
    assert error is None
    for secret in (AKIA, GHP, JWT, "kR8mQ2vL4nB8pR3tWxY7zK9m", STRIPE_LIVE, "PASSw0rd", "Curl-Pw9"):
        assert secret not in repr(out), secret
    env = out["Config"]["Env"]
    assert env[4:] == doc["Config"]["Env"][4:]
    assert out["Config"]["Cmd"] == ["mysql", "-uroot", f"-p{MASK}", "shop"]
    assert out["Config"]["Entrypoint"] == ["curl", "-u", f"admin:{MASK}", "https://api"]
    assert out["Config"]["Labels"]["org.opencontainers.image.revision"] == "4f2a9c1e8b7d"
    assert out["Args"] == ["--user", "root:notapassword"]
    assert redactor.counts["command-line"] == 2 and redactor.counts["aws-access-key-id"] == 1
    assert {"PASSw0rd", "Curl-Pw9", AKIA} <= redactor.found  # masked in the logs too


# --- Hypothesis -------------------------------------------------------------------------

_hex = st.binary(min_size=1, max_size=32).map(bytes.hex)
_sha = st.binary(min_size=20, max_size=20).map(bytes.hex)
_id64 = st.binary(min_size=32, max_size=32).map(bytes.hex)
_uuid = st.uuids().map(str)
_stamp = st.datetimes().map(lambda d: d.isoformat() + "Z")
_b64 = st.binary(min_size=1, max_size=96).map(lambda b: base64.b64encode(b).decode())
_keep_value = st.one_of(
    _sha,
    _sha.map(lambda s: s[:7]),
    _id64,
    _id64.map(lambda s: "sha256:" + s),
    _id64.map(lambda s: "registry.example.com/app@sha256:" + s),
    _uuid,
    _stamp,
    _b64,
    _hex,
    st.integers(min_value=0).map(str),
)
_keep_key = st.sampled_from(
    [
        "id",
        "sha",
        "commit",
        "deploy_sha",
        "rollback_sha",
        "image",
        "digest",
        "container",
        "request_id",
        "X-Request-Id",
        "trace_id",
        "ts",
        "data",
        "payload",
        "etag",
        "checksum",
        "KEY_COUNT",
        "TOKEN_TTL_SECONDS",
    ]
)
_keep_sep = st.sampled_from(["=", ": ", " ", '": "', " = "])
_keep_item = st.tuples(_keep_key, _keep_sep, _keep_value).map("".join)
_keep_line = st.lists(st.one_of(_keep_item, _keep_value), min_size=1, max_size=6).map(" ".join)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(_keep_line)
def test_identifiers_and_ordinary_data_keep_their_values(line):
    redactor = Redactor()
    assert redactor.text(line) == line, dict(redactor.counts)


def _token(prefix: str, size: int, alphabet: str = ALNUM) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=size, max_size=size + 8).map(lambda s: prefix + s)


_secret = st.one_of(
    _token("AKIA", 16, string.ascii_uppercase + string.digits).map(lambda s: s[:20]),
    _token("ASIA", 16, string.ascii_uppercase + string.digits).map(lambda s: s[:20]),
    _token("AIza", 35, ALNUM + "_-").map(lambda s: s[:39]),
    st.sampled_from(["ghp_", "gho_", "ghs_", "ghu_", "ghr_"]).flatmap(lambda p: _token(p, 36)),
    _token("github_pat_", 22, ALNUM + "_"),
    _token("glpat-", 20, ALNUM + "_-"),
    st.sampled_from(["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-"]).flatmap(lambda p: _token(p, 10, ALNUM + "-")),
    st.sampled_from(["sk_live_", "rk_live_"]).flatmap(lambda p: _token(p, 16)),
    _token("npm_", 36).map(lambda s: s[:40]),
    _token("pypi-AgEIcHlwaS5vcmc", 50, ALNUM + "_-"),
    _token("dckr_pat_", 20, ALNUM + "_-"),
    st.tuples(_token("eyJ", 8, ALNUM + "_-"), _token("eyJ", 8, ALNUM + "_-"), _token("", 8, ALNUM + "_-")).map(
        ".".join
    ),
)
_before = st.sampled_from(["", "x ", "token: ", '"', "url=", "(", "SESSION=", "got ", "[", "'"])
_after = st.sampled_from(["", " ok", '"', ",", ")", ".", " ", "'", "]", ";"])


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(_before, _secret, _after, _keep_line)
def test_token_formats_are_masked_wherever_they_sit(before, secret, after, noise):
    out = redact_text(f"{noise} {before}{secret}{after} {noise}")
    assert secret not in out
    assert noise in out or any(part in out for part in noise.split(" "))


# --- the log gate agrees with the text rules --------------------------------------------

_gate_line = st.one_of(
    st.sampled_from([text for text, _, _ in MUST_MASK] + MUST_KEEP),
    st.tuples(_before, _secret, _after).map("".join),
    _keep_line,
    st.tuples(
        st.sampled_from(["password", "SESSION_ID", "session", "token", "api key", "sig", "X-Amz-Signature", "key"]),
        st.sampled_from([" ", "=", ": ", " is ", " = ", ': "', "='", "=>", ":"]),
        st.one_of(
            _hex,
            _uuid,
            _b64,
            st.text(alphabet=ALNUM + "-_.", min_size=1, max_size=40),
            st.sampled_from(
                [MASK, f'"{MASK}"', f"'{MASK}'", f'"{MASK} more"', f"{MASK},", f"{MASK}x", f'\\"{MASK}\\"']
            ),
        ),
        st.sampled_from(["", " ", '"', "'", ",", " ok"]),
    ).map("".join),
    st.tuples(
        st.sampled_from(
            ["Authorization", "authorization", "Proxy-Authorization", "X-Authorization", "Bearer", "bearer"]
        ),
        st.sampled_from([": ", "=", " ", ':"']),
        st.sampled_from(["", "Bearer ", "Basic ", "Custom ", "token "]),
        st.sampled_from([MASK, "abc.def", f"{MASK}x", '"x y"']),
    ).map("".join),
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_gate_line, min_size=1, max_size=20))
def test_log_batches_mask_exactly_what_the_text_rules_mask(lines):
    name = "api-1"
    prefix = f"{name} stdout ".encode() + TS
    logs = LogRedactor((), head_len=len(prefix), stream_len=len(name) + 7)
    rules = Redactor()
    lines = [line.replace("\n", " ") for line in lines]
    got = logs.batch(b"".join(prefix + line.encode() + b"\n" for line in lines)).decode().split("\n")[:-1]
    assert got == [prefix.decode() + rules.text(line) for line in lines]
    assert logs.counts == rules.counts
