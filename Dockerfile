# The rollback-pm Woodpecker plugin: `rollback-pm hook` in a small, non-root image.
#
#   docker build -t rollback-pm .
#   docker run --rm --group-add "$(stat -c %g /var/run/docker.sock)" \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     -v /var/log/azaion:/var/log/azaion -v /var/lib/rollback-pm:/var/lib/rollback-pm \
#     -e PLUGIN_COMPOSE_PROJECT=shop -e PLUGIN_SERVICE=shop -e PLUGIN_DEPLOY_SHA=<sha> rollback-pm
#
# The process runs as uid 10001 ("rollback-pm"). It reaches the docker socket through the
# socket's group, which differs from host to host, so it is given at run time: either
# `--group-add <gid>` as above, or start the container as root (`--user 0`; in Woodpecker
# `backend_options: docker: user: "0"`) and the entrypoint joins the socket's group and
# drops to uid 10001 before doing anything else. See docs/woodpecker.md.
#
# The base image is pinned to a patch release; pin a digest for byte-for-byte builds:
#   docker build --build-arg PYTHON_IMAGE=python:3.12.11-slim-bookworm@sha256:<digest> .
ARG PYTHON_IMAGE=python:3.12.11-slim-bookworm

# --- build: wheels for the package and every dependency --------------------------------
# The dependencies' versions come from constraints.txt (scripts/update-constraints.sh), so two
# builds install the same packages.
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml setup.cfg README.md LICENSE constraints.txt ./
COPY rollback_pm ./rollback_pm
COPY hooks ./hooks
RUN python -m pip wheel --no-cache-dir --constraint constraints.txt --wheel-dir /wheels .

# --- the plugin image ------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
# Re-declared: an ARG before the first FROM is visible inside a stage only this way.
ARG PYTHON_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="rollback-pm" \
      org.opencontainers.image.description="Turns every production rollback into a complete, on-time postmortem (Woodpecker plugin)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.documentation="docs/woodpecker.md" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ROLLBACK_PM_PLUGIN_USER=10001

# git lists the commits between the rollback and the deploy SHA ("what changed") from the
# pipeline's workspace, which belongs to another uid, hence safe.directory.
# DL3008 (pin apt versions) is ignored on purpose: Debian replaces a package version in
# place with each security update and the old version leaves the mirror, so a pinned
# version breaks the build within weeks; the base image tag pins the release (bookworm).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends git \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* \
 && git config --system --add safe.directory '*'

# Install offline from the build stage's wheels, then drop pip: nothing in the final image
# can build or fetch packages. (The wheels' COPY layer, about 2 MB, stays in the history: the
# classic builder has no RUN --mount to avoid it.)
COPY --from=build /wheels /tmp/wheels
RUN python -m pip install --no-cache-dir --no-index --find-links /tmp/wheels /tmp/wheels/rollback_pm-*.whl \
 && python -m pip uninstall --yes pip setuptools wheel \
 && rm -rf /tmp/wheels /root/.cache \
 && useradd --system --uid 10001 --user-group --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin rollback-pm \
 && install -d -o rollback-pm -g rollback-pm -m 0750 /var/lib/rollback-pm /var/log/azaion

# Mode 0755 comes from the repository (the classic builder has no COPY --chmod).
COPY hooks/plugin-entrypoint /usr/local/bin/plugin-entrypoint

USER 10001:10001
ENTRYPOINT ["/usr/local/bin/plugin-entrypoint"]
