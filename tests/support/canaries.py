"""Planted secrets: one canary per format the redaction rules promise to mask.

``canaries(tag)`` makes a fresh set whose values carry ``tag`` (one letter per place they
are planted: E env, L labels, A args, G container logs, S smoke report, W Woodpecker step
log), so a leak names both the format and the place. Every value is assembled from parts
here: no complete token-shaped string sits in the source tree.
"""

from __future__ import annotations

import base64
import json
from typing import NamedTuple


class Canary(NamedTuple):
    fmt: str  # what it is
    text: str  # a line (or value) that carries it, as a program would print or pass it
    secret: str  # what must never be written anywhere


def _fit(seed: str, size: int, filler: str = "q7Z2k9M4x") -> str:
    while len(seed) < size:
        seed += filler
    return seed[:size]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def canaries(tag: str) -> list[Canary]:
    t = tag.upper()
    akia = "AKIA" + _fit("CNRY" + t, 16, "Q2ZXB4K5M7P9").upper()
    aws_secret = _fit(f"Cnry{t}/K7MDENG/bPxRfiCYzq8Hk2Lm4N", 40)
    gcp = "AIza" + _fit(f"SyCnry{t}x7Qk2mN8pL5rT1vW3yZ6bC9eF", 35)
    azure = "kR2" + "8Q~" + _fit(f"Cnry{t}vB7nM1qW3eR5tY6uI8oP0aS2dF4g", 34)
    ghp = "ghp_" + _fit(f"Cnry{t}R2d2C3p0R2d2C3p0R2d2C3p0", 36)
    github_pat = "github_pat_" + _fit(f"11CNRY{t}0_aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hI6kL9nO2qR5tU8wX1zA4cD7fG0", 82)
    glpat = "glpat-" + _fit(f"Cnry{t}xY7zK9mQ2vL4nB8p", 20)
    slack = "xoxb-" + "2893746510-4827361950274-" + _fit(f"Cnry{t}kR8mQ2vL4nB8pR3tWxY7", 24)
    hook_path = f"T0{t}CNRY12/B0EFGH456/" + _fit(f"Cnry{t}kR8mQ2vL4nB8pR3tWxY7", 24)
    stripe = "sk_live_" + _fit(f"51Cnry{t}9dKz8mQ2vL4nB8pR3tWxY7", 27)
    npm = "npm_" + _fit(f"Cnry{t}kR8mQ2vL4nB8pR3tWxY7zK9mA1b2", 36)
    pypi = "pypi-" + "AgEIcHlwaS5vcmc" + _fit(f"CJGCnry{t}ZmE3ZjE0LTk0YjMtNGJkOC1hYzEwLWI2ZDE5ZjNhNmM0", 70)
    docker = "dckr_pat_" + _fit(f"Cnry{t}kR8mQ2vL4nB8pR3tWxY7zK9", 27)
    jwt = ".".join(
        [
            _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()),
            _b64url(json.dumps({"sub": f"canary-{t}", "role": "admin"}).encode()),
            _b64url(f"signature-of-canary-{t}-0123456789".encode()),
        ]
    )
    pem_body = [_fit(f"MIIEpAIBAAKCAQEAcnry{t}", 64, "Q2ZXB4K5M7P9aBcD"), _fit(f"cnry{t}pemline2", 64, "k9M4xQ2ZX")]
    pem = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(pem_body) + "\n-----END RSA PRIVATE KEY-----"
    return [
        Canary("aws-access-key-id", akia, akia),
        Canary("aws-secret-access-key", f"aws_secret_access_key = {aws_secret}", aws_secret),
        Canary("gcp-api-key", gcp, gcp),
        Canary("azure-client-secret", azure, azure),
        Canary("github-token", ghp, ghp),
        Canary("github-pat", github_pat, github_pat),
        Canary("gitlab-token", glpat, glpat),
        Canary("slack-token", slack, slack),
        Canary("slack-webhook", f"https://hooks.slack.com/services/{hook_path}", hook_path),
        Canary("stripe-key", stripe, stripe),
        Canary("npm-token", npm, npm),
        Canary("pypi-token", pypi, pypi),
        Canary("docker-token", docker, docker),
        Canary("jwt", jwt, jwt),
        Canary("pem-private-key", pem, pem_body[0]),
        Canary("curl-user", f"curl -u admin:Cnry-{t}-curlPw https://api.internal/health", f"Cnry-{t}-curlPw"),
        Canary("mysql-p", f"mysql -h db -uroot -pCnry{t}MysqlPw shop", f"Cnry{t}MysqlPw"),
        Canary("password-flag", f"app --password=Cnry-{t}-flagPw --port 80", f"Cnry-{t}-flagPw"),
        Canary("token-flag", f"app --token Cnry-{t}-tokenFlag --verbose", f"Cnry-{t}-tokenFlag"),
        Canary("quoted-value", f'password: "Cnry {t} quoted value"', f"Cnry {t} quoted value"),
        Canary("prose", f"cannot log in with password Cnry{t}Xk9vQ2mT7p on db", f"Cnry{t}Xk9vQ2mT7p"),
        Canary("bearer", f"Authorization: Bearer Cnry{t}bearer0123456789", f"Cnry{t}bearer0123456789"),
        Canary("url-password", f"https://deploy:Cnry-{t}-urlPw@git.internal/x.git", f"Cnry-{t}-urlPw"),
        Canary("json-password", f'{{"password": "Cnry-{t}-jsonPw"}}', f"Cnry-{t}-jsonPw"),
        Canary("env-assignment", f"DB_PASSWORD=Cnry-{t}-envPw", f"Cnry-{t}-envPw"),
    ]


def single_line(canary: Canary) -> bool:
    return "\n" not in canary.text
