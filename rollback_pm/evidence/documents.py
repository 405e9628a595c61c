"""The inspect documents: fetched in parallel within the inspect deadline, then redacted together.

Redacting every container's and image's document in one go means a secret found in
any of them (an env value, a label, an argument) is known before any log line is read,
so it is masked in every log too.
"""

from __future__ import annotations

from concurrent.futures import Executor, Future, wait
from dataclasses import dataclass, field
from typing import Any

from rollback_pm import log as rlog
from rollback_pm.evidence import client as engine
from rollback_pm.evidence.clock import GRACE, Clock
from rollback_pm.evidence.types import ContainerResult
from rollback_pm.redact import redact_documents


@dataclass
class Inspected:
    """The raw (unredacted) documents that could be read."""

    docs: dict[str, dict[str, Any]] = field(default_factory=dict)  # container id -> inspect document
    images: dict[str, dict[str, Any]] = field(default_factory=dict)  # image id -> image summary
    deadline_hit: bool = False


@dataclass
class Documents:
    """The redacted documents, and what their redaction learnt."""

    inspect_docs: list[dict[str, Any]]  # one per container whose document could be redacted, in result order
    image_docs: dict[str, dict[str, Any]]  # image id -> redacted summary
    redacted: dict[str, dict[str, Any]]  # container id -> its entry in inspect_docs
    known: set[str]  # secret values found: masked in every log as well
    counts: dict[str, int]  # redaction counts per rule


def image_summary(doc: dict[str, Any]) -> dict[str, Any]:
    config = doc.get("Config") or {}
    return {
        "Id": doc.get("Id"),
        "RepoTags": doc.get("RepoTags") or [],
        "RepoDigests": doc.get("RepoDigests") or [],
        "Created": doc.get("Created"),
        "Labels": config.get("Labels") or {},
    }


def inspect_all(
    pool: Executor, client: engine.APIClient, results: list[ContainerResult], clock: Clock, errors: list[str]
) -> Inspected:
    """Inspect every container, then every image they run, within the inspect deadline.

    A container that cannot be inspected gets its error on its result; an image that
    cannot, an entry in ``errors``.
    """
    clock.start_inspect()

    def inspect(ident: str) -> dict[str, Any]:
        return engine.inspect_container(client, ident, timeout=max(0.05, clock.inspect_remaining()))

    def inspect_image(ident: str) -> dict[str, Any]:
        return image_summary(engine.inspect_image(client, ident, timeout=max(0.05, clock.inspect_remaining())))

    found = Inspected()
    futures = {pool.submit(inspect, r.id): r for r in results}
    done, pending = wait(futures, timeout=max(0.0, clock.inspect_remaining()) + GRACE)
    for future, result in futures.items():
        error = future_error(future, done, "inspect")
        if error:
            result.error = error
            found.deadline_hit = found.deadline_hit or future in pending
        else:
            found.docs[result.id] = future.result()
    image_ids = sorted({d.get("Image", "") for d in found.docs.values() if d.get("Image")})
    image_futures = {pool.submit(inspect_image, i): i for i in image_ids}
    done, pending = wait(image_futures, timeout=max(0.0, clock.inspect_remaining()) + GRACE)
    for image_future, image_id in image_futures.items():
        error = future_error(image_future, done, "image inspect")
        if error:
            errors.append(f"image {image_id[:19]}: {error}")
        else:
            found.images[image_id] = image_future.result()
    return found


def redact_all(results: list[ContainerResult], inspected: Inspected, errors: list[str]) -> Documents:
    """Redact all documents together: a secret found in one is masked in all (and in the logs).

    Fails closed: a document whose redaction fails is not written, and neither are the
    logs of its container (its result says so).
    """
    ordered = [r for r in results if r.id in inspected.docs]
    raw_images = inspected.images
    docs_in = [inspected.docs[r.id] for r in ordered] + [raw_images[i] for i in raw_images]
    docs_out, doc_redactor, doc_errors = redact_documents(docs_in)
    for secret in doc_redactor.found:
        rlog.register_secret(secret)
    inspect_docs: list[dict[str, Any]] = []
    image_docs: dict[str, dict[str, Any]] = {}
    for index, image_id in enumerate(raw_images):
        position = len(ordered) + index
        if docs_out[position] is not None:
            image_docs[image_id] = docs_out[position]
        else:
            errors.append(
                f"image {image_id[:19]}: redaction failed ({type(doc_errors[position]).__name__}); summary not written"
            )
    redacted: dict[str, dict[str, Any]] = {}
    for index, result in enumerate(ordered):
        doc = docs_out[index]
        if doc is None:
            result.error = f"redaction of its inspect document failed ({type(doc_errors[index]).__name__}); document and logs not written"
            continue
        doc = dict(doc)
        if doc.get("Image") in image_docs:
            doc["ImageSummary"] = image_docs[doc["Image"]]
        redacted[result.id] = doc
        inspect_docs.append(doc)
    return Documents(inspect_docs, image_docs, redacted, set(doc_redactor.found), dict(doc_redactor.counts))


def future_error(future: Future[Any], done: set[Future[Any]], what: str) -> str | None:
    """What went wrong with one inspect call, in words fit for the manifest; None if nothing."""
    if future not in done:
        future.cancel()
        return f"{what} did not finish before the deadline"
    exc = future.exception()
    if exc is None:
        return None
    if isinstance(exc, engine.ContainerGone):
        return f"container vanished (removed) before its {what}"
    if isinstance(exc, engine.EngineError):
        return f"{what} failed: {exc}"
    return f"{what} failed: {type(exc).__name__}: {exc}"
