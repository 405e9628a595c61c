"""Value patterns: secrets recognised by their own shape, whatever key (if any) holds them.

Only formats with a fixed prefix or structure that ordinary data does not have are here:
each has literal *triggers* (one of which every match contains), so the log gate finds
candidate lines in its one Aho-Corasick pass and the pattern runs only on those. Patterns
are anchored on both sides (no letter or digit may continue the token), so the same
letters inside a longer identifier or a base64 blob do not match.

Each rule name is what the manifest counts.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class TokenFormat(NamedTuple):
    rule: str
    triggers: tuple[str, ...]
    pattern: re.Pattern[str]  # the group "v" is masked, else the whole match


def _fmt(rule: str, triggers: tuple[str, ...], pattern: str) -> TokenFormat:
    return TokenFormat(rule, triggers, re.compile(pattern))


TOKEN_FORMATS = (
    # AWS access key ids: long-term (AKIA) and temporary (ASIA) keys, and the older prefixes.
    _fmt(
        "aws-access-key-id",
        ("AKIA", "ASIA", "ABIA", "ACCA"),
        r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])",
    ),
    # Google: API keys, OAuth client secrets and access tokens.
    _fmt("gcp-api-key", ("AIza",), r"(?<![\w-])AIza[0-9A-Za-z_\-]{35}(?![\w-])"),
    _fmt(
        "gcp-oauth",
        ("GOCSPX-", "ya29."),
        r"(?<![\w-])(?:GOCSPX-[A-Za-z0-9_\-]{28}|ya29\.[0-9A-Za-z_\-]{20,})(?![\w-])",
    ),
    # Azure: Entra ID client secrets (a "Q~" after 3 characters and a digit), SAS signatures.
    _fmt(
        "azure-client-secret",
        ("Q~",),
        r"(?<![\w~.-])[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}(?![\w~.-])",
    ),
    _fmt("azure-sas", ("sig=",), r"(?<=[?&;])sig=(?P<v>[A-Za-z0-9%+/=]{30,})"),
    # Forges and registries.
    _fmt(
        "github-token",
        ("ghp_", "gho_", "ghs_", "ghu_", "ghr_", "github_pat_"),
        r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,244})(?![A-Za-z0-9_])",
    ),
    _fmt(
        "gitlab-token",
        (
            "glpat-",
            "gldt-",
            "glrt-",
            "glptt-",
            "glcbt-",
            "gloas-",
            "glimt-",
            "glft-",
            "glsoat-",
            "glagent-",
            "GR1348941",
        ),
        r"(?<![\w-])(?:gl(?:pat|dt|rt|ptt|cbt|oas|imt|ft|soat|agent)-|GR1348941)[A-Za-z0-9_\-]{20,}(?![\w-])",
    ),
    _fmt("npm-token", ("npm_",), r"(?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36}(?![A-Za-z0-9_])"),
    _fmt("pypi-token", ("pypi-AgE",), r"(?<![\w-])pypi-AgE[A-Za-z0-9_\-]{50,}"),
    _fmt("docker-token", ("dckr_pat_", "dckr_oat_"), r"(?<![\w-])dckr_(?:pat|oat)_[A-Za-z0-9_\-]{20,}"),
    _fmt("vault-token", ("hvs.", "hvb.", "hvr."), r"(?<![\w.-])hv[sbr]\.[A-Za-z0-9_\-]{24,}"),
    # Chat: Slack tokens, and Slack / Discord webhook URLs (the path is the credential).
    _fmt(
        "slack-token",
        ("xoxa-", "xoxb-", "xoxe-", "xoxo-", "xoxp-", "xoxr-", "xoxs-", "xapp-"),
        r"(?<![\w-])(?:xox[abeoprs]-[A-Za-z0-9-]{10,}|xapp-\d-[A-Za-z0-9-]{10,})",
    ),
    _fmt(
        "webhook-url",
        ("hooks.slack.com/", "discord.com/api/webhooks/", "discordapp.com/api/webhooks/"),
        r"(?:hooks\.slack\.com/(?:services|workflows|triggers)/|discord(?:app)?\.com/api/webhooks/)"
        r"(?P<v>[A-Za-z0-9_\-]+(?:/[A-Za-z0-9_\-]+)*)",
    ),
    # Payments and AI APIs.
    _fmt(
        "stripe-key",
        ("sk_live_", "rk_live_", "sk_test_", "rk_test_", "whsec_"),
        r"(?<![\w-])(?:(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9+/=]{24,})",
    ),
    _fmt(
        "openai-key",
        ("T3BlbkFJ",),
        r"(?<![\w-])sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{16,}T3BlbkFJ[A-Za-z0-9_\-]{16,}",
    ),
    _fmt("sendgrid-key", ("SG.",), r"(?<![\w.-])SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}(?![\w-])"),
    # JSON Web Tokens: a JSON header and payload ('{"' is "eyJ" in base64url), then a signature.
    _fmt(
        "jwt",
        ("eyJ",),
        r"(?<![\w-])eyJ[A-Za-z0-9_\-]{5,}=*\.eyJ[A-Za-z0-9_\-]{2,}=*\.[A-Za-z0-9_\-+/]*=*",
    ),
)
FORMAT_TRIGGERS = tuple(sorted({t for f in TOKEN_FORMATS for t in f.triggers}))


# --- credentials on command lines ---------------------------------------------------------
# A short option's value is only a password for some commands (``-p`` is a port for most),
# so these run on what follows one of these commands, up to the end of that command.
COMMAND_TRIGGERS = ("curl", "mysql", "mariadb", "sshpass", "redis-cli", "login", "openssl")
_VALUE = r"""(?P<v>"[^"\n]*"|'[^'\n]*'|[^\s"';|&]+)"""
_COMMAND = re.compile(
    r"(?<![\w.-])(?:(?P<curl>curl)"
    r"|(?P<mysql>mysql(?:dump|admin|import|show|check|slap)?|mariadb(?:-dump|-admin|-import|-show|-check)?)"
    r"|(?P<login>(?:docker|podman|buildah|skopeo|nerdctl|helm|oras|crane)(?:[ \t]+registry)?[ \t]+login)"
    r"|(?P<sshpass>sshpass)|(?P<redis>redis-cli)|(?P<openssl>openssl))(?![\w.-])"
)
_END_OF_COMMAND = re.compile(r"[\n;|&]")
_OPTIONS = {
    # curl -u user:pass, --user user:pass, -uuser:pass, -U / --proxy-user (the password after the first colon)
    "curl": re.compile(
        r"""(?<![\w-])(?:-u|--user|-U|--proxy-user)(?:[ \t]+|=)?"""
        r"""(?:(?P<q>["'])[^:\n"']*:(?P<v>[^\n"']+)(?P=q)|[^\s:"']*:(?P<w>[^\s"';|&]+))"""
    ),
    # mysql -pPASS (attached only: "-p NAME" prompts for the password and names a database)
    "mysql": re.compile(r"""(?<![\w-])-p(?P<v>"[^"\n]*"|'[^'\n]*'|[^\s"';|&]+)"""),
    # docker login -p PASS, sshpass -p PASS
    "login": re.compile(r"(?<![\w-])-p(?:[ \t]+|=)?" + _VALUE),
    "sshpass": re.compile(r"(?<![\w-])-p(?:[ \t]+|=)?" + _VALUE),
    # redis-cli -a PASS
    "redis": re.compile(r"(?<![\w-])-a[ \t]+" + _VALUE),
    # openssl ... -passin pass:PASS / -passout pass:PASS / -pass pass:PASS
    "openssl": re.compile(r"(?<![\w-])-pass(?:in|out)?[ \t]+pass:" + _VALUE),
}


def command_values(text: str) -> list[tuple[int, int]]:
    """Spans of the passwords given to known commands on their command lines in ``text``."""
    spans: list[tuple[int, int]] = []
    for command in _COMMAND.finditer(text):
        kind = command.lastgroup or ""
        end = _END_OF_COMMAND.search(text, command.end())
        stop = end.start() if end else len(text)
        for option in _OPTIONS[kind].finditer(text, command.end(), stop):
            group = "w" if option.groupdict().get("w") else "v"
            start, finish = option.span(group)
            value = option.group(group)
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                start, finish = start + 1, finish - 1
            if finish > start:
                spans.append((start, finish))
    return spans
