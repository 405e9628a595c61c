"""SHA validation, rollback SHA sources and their precedence, the image revision label."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from rollback_pm.errors import EXIT_USAGE, InvalidShaError
from rollback_pm.facts.shas import ShaResolution, image_revision, resolve_rollback_sha, validate_sha

FIXTURES = Path(__file__).parent / "fixtures"
DEPLOY = "d" * 40
FLAG = "a" * 40
LABEL = "3f9c2a1b4d5e6f708192a3b4c5d6e7f8091a2b3c"  # the label on the captured image
GOOD = "b" * 40
PREV = "c" * 40
CI_PREV_WARNING = (
    "rollback SHA ccccccc is CI_PREV_COMMIT_SHA: only the previous pipeline's commit on the branch, not "
    "necessarily the version that was deployed before; confirm it, or pass --rollback-sha, label images with "
    "org.opencontainers.image.revision, or run `rollback-pm mark-good` after good deploys"
)
UNKNOWN_WARNING = (
    "rollback SHA unknown: pass --rollback-sha (or ROLLBACK_PM_ROLLBACK_SHA), label images with "
    "org.opencontainers.image.revision, or run `rollback-pm mark-good` after good deploys"
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (LABEL, LABEL),
        (f"  {LABEL.upper()}\n", LABEL),
    ],
)
def test_validate_sha_normalises(value: str, expected: str) -> None:
    assert validate_sha(value, "deploy SHA") == expected


@pytest.mark.parametrize("value", ["3f9c2a1", LABEL + "0", "g" * 40, "", "--output=/etc/passwd", LABEL[:39] + " "])
def test_validate_sha_rejects_short_and_malformed(value: str) -> None:
    with pytest.raises(InvalidShaError) as caught:
        validate_sha(value, "--deploy-sha")
    assert str(caught.value) == (
        f"--deploy-sha {value!r} is not a full 40-hex commit SHA; pass the full SHA (git rev-parse HEAD)"
    )
    assert caught.value.exit_code == EXIT_USAGE


# (explicit, explicit_source, image label, last good, CI prev) -> (sha, source, warnings)
PRECEDENCE = [
    ((FLAG, "flag", LABEL, GOOD, PREV), (FLAG, "flag", [])),
    ((FLAG.upper(), "env", LABEL, GOOD, PREV), (FLAG, "env", [])),
    ((None, "flag", LABEL, GOOD, PREV), (LABEL, "image-label", [])),
    (("  ", "flag", LABEL, GOOD, PREV), (LABEL, "image-label", [])),
    ((None, "flag", None, GOOD, PREV), (GOOD, "last-good", [])),
    ((None, "flag", "", GOOD, PREV), (GOOD, "last-good", [])),
    ((None, "flag", None, None, PREV), (PREV, "ci-prev", [CI_PREV_WARNING])),
    ((None, "flag", None, None, None), (None, None, [UNKNOWN_WARNING])),
    (
        (None, "flag", "v1.2.3", GOOD, PREV),
        (
            GOOD,
            "last-good",
            [
                "image label org.opencontainers.image.revision 'v1.2.3' is not a full 40-hex commit SHA; pass the full "
                "SHA (git rev-parse HEAD); ignored"
            ],
        ),
    ),
    (
        (None, "flag", "v1.2.3", None, "abc"),
        (
            None,
            None,
            [
                "image label org.opencontainers.image.revision 'v1.2.3' is not a full 40-hex commit SHA; pass the full "
                "SHA (git rev-parse HEAD); ignored",
                "CI_PREV_COMMIT_SHA 'abc' is not a full 40-hex commit SHA; pass the full SHA (git rev-parse HEAD); ignored",
                UNKNOWN_WARNING,
            ],
        ),
    ),
]


@pytest.mark.parametrize(("given", "expected"), PRECEDENCE)
def test_rollback_sha_sources_and_precedence(given: tuple, expected: tuple) -> None:
    explicit, source, label, good, prev = given
    resolution = resolve_rollback_sha(
        explicit=explicit, explicit_source=source, image_revision=label, last_good=good, ci_prev=prev
    )
    assert resolution == ShaResolution(*expected)


def test_malformed_explicit_sha_is_a_usage_error_even_with_other_sources() -> None:
    with pytest.raises(InvalidShaError) as caught:
        resolve_rollback_sha(explicit="3f9c2a1", image_revision=LABEL, last_good=GOOD)
    assert str(caught.value) == (
        "rollback SHA '3f9c2a1' is not a full 40-hex commit SHA; pass the full SHA (git rev-parse HEAD)"
    )


def test_implicit_source_naming_the_deploy_itself_is_skipped() -> None:
    # labels read before the rollback replaced the containers name the bad version
    resolution = resolve_rollback_sha(explicit=None, image_revision=DEPLOY, last_good=GOOD, deploy_sha=DEPLOY)
    assert resolution == ShaResolution(
        GOOD,
        "last-good",
        [
            "image label org.opencontainers.image.revision ddddddd is the deploy SHA itself, not what the rollback "
            "restored; ignored"
        ],
    )


def test_explicit_sha_equal_to_deploy_is_kept_with_a_warning() -> None:
    assert resolve_rollback_sha(explicit=DEPLOY, deploy_sha=DEPLOY) == ShaResolution(
        DEPLOY, "flag", ["rollback SHA ddddddd given by flag equals the deploy SHA; check --rollback-sha"]
    )


def load_docs() -> tuple[list[dict], dict[str, dict]]:
    docs = json.loads((FIXTURES / "inspect-compose.json").read_text())
    image = json.loads((FIXTURES / "image-busybox.json").read_text())
    return docs, {image["Id"]: image}


def test_image_revision_from_the_image_of_the_service_container() -> None:
    docs, images = load_docs()
    assert image_revision(docs, images, "api") == LABEL
    assert image_revision(docs, images, "factsfx-api-1") == LABEL
    assert image_revision(docs, images, None) == LABEL  # every container agrees


def test_image_revision_falls_back_to_container_labels() -> None:
    docs, _ = load_docs()
    api = copy.deepcopy(next(d for d in docs if d["Name"] == "/factsfx-api-1"))
    api["Config"]["Labels"]["org.opencontainers.image.revision"] = GOOD
    assert image_revision([api], {}, "api") == GOOD


def test_image_revision_prefers_running_then_newest_container_of_the_service() -> None:
    docs, images = load_docs()
    old = copy.deepcopy(next(d for d in docs if d["Name"] == "/factsfx-api-1"))  # exited
    new = copy.deepcopy(old)
    new["Name"], new["Image"] = "/factsfx-api-2", "sha256:new"
    new["State"].update(Running=True, Status="running", StartedAt="2026-11-23T19:50:00.1Z")  # older start, running
    images["sha256:new"] = {"Config": {"Labels": {"org.opencontainers.image.revision": GOOD}}}
    assert image_revision([old, new], images, "api") == GOOD


def test_image_revision_ambiguous_without_service_match_is_none() -> None:
    docs, images = load_docs()
    other = copy.deepcopy(docs[0])
    other["Name"], other["Image"] = "/factsfx-db-2", "sha256:other"
    other["Config"]["Labels"] = {"com.docker.compose.service": "db"}
    images["sha256:other"] = {"Config": {"Labels": {"org.opencontainers.image.revision": GOOD}}}
    assert image_revision(docs + [other], images, "payments") is None
    assert image_revision(docs + [other], images, "db") == LABEL  # the running db-1, not the exited copy


def test_image_revision_none_without_labels() -> None:
    docs, _ = load_docs()
    stripped = copy.deepcopy(docs)
    for doc in stripped:
        doc["Config"]["Labels"] = None
    assert image_revision(stripped, {}, "api") is None
    assert image_revision([], {}, "api") is None
