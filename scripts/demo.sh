#!/usr/bin/env bash
# The whole promise, once, on embedded defaults (local dockerd, SQLite, the `file` tracker):
# a deploy of the sample service "azaion-demo" fails its smoke test, the pipeline's rollback
# step calls `rollback-pm hook --phase collect`, the rollback replaces the containers, and
# `rollback-pm hook --phase finalize` records the facts, drafts the postmortem and opens
# the ticket; then `rollback-pm report` writes the insights page. Output goes to ./demo-out
# (override with DEMO_OUT=/path).
# The service scripts below are single-quoted on purpose: they expand in the container.
# shellcheck disable=SC2016
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
"$ROOT/scripts/bootstrap.sh"
VENV=${ROLLBACK_PM_VENV:-$ROOT/.venv}
OUT=${DEMO_OUT:-$ROOT/demo-out}
PROJECT=azaion-demo
DEPLOY_SHA=$(printf 'azaion-demo bad deploy' | sha1sum | cut -c1-40)
GOOD_SHA=$(printf 'azaion-demo last good' | sha1sum | cut -c1-40)
export ROLLBACK_PM_STATE_DIR="$OUT/state" ROLLBACK_PM_EVIDENCE_DIR="$OUT/evidence"
rpm() { "$VENV/bin/rollback-pm" "$@"; }

# Tiny images from the host's busybox: no registry needed. Both carry their commit.
build_image() {  # tag revision
  local root; root=$(mktemp -d)
  mkdir -p "$root/bin"; cp /bin/busybox "$root/bin/busybox"
  for applet in sh echo sleep date seq; do ln -s busybox "$root/bin/$applet"; done
  tar -C "$root" -c . | docker import --change "LABEL org.opencontainers.image.revision=$2" - "$1" >/dev/null
  rm -rf "$root"
}
build_image rollback-pm-demo/app:bad "$DEPLOY_SHA"
build_image rollback-pm-demo/app:good "$GOOD_SHA"

cleanup() { docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" | xargs -r docker rm -f >/dev/null; }
cleanup
rm -rf "$OUT"; mkdir -p "$OUT"

run_svc() {  # service image script [extra docker args...]
  local svc=$1 image=$2 script=$3; shift 3
  docker run -d --network none --name "$PROJECT-$svc-1" \
    --label "com.docker.compose.project=$PROJECT" --label "com.docker.compose.service=$svc" \
    "$@" "$image" sh -c "$script" >/dev/null
}

DEPLOYED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
echo "== deploy $DEPLOY_SHA: api crashes on start, web and worker log"
run_svc api rollback-pm-demo/app:bad \
  'echo "api starting, version bad"; echo "connecting to $DATABASE_URL"; for i in $(seq 1 5); do echo "migration step $i"; done; echo "FATAL: column users.tenant_id does not exist" >&2; exit 1' \
  -e DATABASE_URL='postgres://app:demo-db-Secret-42@db:5432/app' -e DB_PASSWORD='demo-db-Secret-42' -e POOL_SIZE=10
run_svc web rollback-pm-demo/app:bad \
  'for i in $(seq 1 20); do echo "GET /health 502 upstream api unavailable"; sleep 0.05; done; sleep 600'
run_svc worker rollback-pm-demo/app:bad \
  'for i in $(seq 1 10); do echo "job $i waiting for api"; echo "retry $i" >&2; sleep 0.05; done; sleep 600' \
  -e API_TOKEN='demo-api-token-7f3a9c' -e TOKEN_TTL_SECONDS=300
sleep 2

cat >"$OUT/smoke.jsonl" <<JSON
{"step": 1, "name": "containers up", "status": "passed", "ts": "$(date -u -d '-2 seconds' +%Y-%m-%dT%H:%M:%SZ)", "message": ""}
{"step": 2, "name": "web responds", "status": "passed", "ts": "$(date -u -d '-1 seconds' +%Y-%m-%dT%H:%M:%SZ)", "message": ""}
{"step": 3, "name": "api health", "status": "failed", "ts": "$(date -u -d 'now' +%Y-%m-%dT%H:%M:%SZ)", "message": "GET /api/health -> 502 Bad Gateway after 30s"}
{"step": 4, "name": "login flow", "status": "skipped", "ts": "$(date -u -d 'now' +%Y-%m-%dT%H:%M:%SZ)", "message": "previous step failed"}
JSON

common=(--compose-project "$PROJECT" --service "$PROJECT" --environment production
        --deploy-sha "$DEPLOY_SHA" --pipeline-number 42
        --pipeline-url "https://ci.example.com/repos/7/pipeline/42")

echo "== rollback step, before the rollback: rollback-pm hook --phase collect"
rpm hook --phase collect "${common[@]}"

echo "== rollback: the previous version replaces the failed containers"
cleanup
run_svc api rollback-pm-demo/app:good 'echo "api starting, version good"; sleep 600'
run_svc web rollback-pm-demo/app:good 'echo "GET /health 200"; sleep 600'
run_svc worker rollback-pm-demo/app:good 'echo "worker ready"; sleep 600'

echo "== rollback step, after the rollback: rollback-pm hook --phase finalize"
set +e
rpm hook --phase finalize "${common[@]}" --smoke-report "$OUT/smoke.jsonl" --deployed-at "$DEPLOYED_AT"
rc=$?
set -e
cleanup

echo
echo "== exit code $rc; what is on disk now:"
echo "evidence:  $(find "$OUT/evidence" -maxdepth 1 -type f -name 'rollback-*' -printf '%f\n' | sort | tr '\n' ' ')"
rpm incidents list
id=$(rpm incidents list --json | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
draft=$(rpm incidents show "$id" --json | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["draft_path"])')
echo "draft:     $draft"
echo "ticket:    $(ls "$OUT"/state/tickets/*.json)"
if grep -rq -e 'demo-db-Secret-42' -e 'demo-api-token-7f3a9c' "$OUT"; then
  echo "LEAK: a container secret reached $OUT"; exit 1
fi
echo "secrets:   the planted container secrets appear in no file under $OUT"
echo
echo "== the draft's header:"
sed -n '1,30p' "$draft"

echo
echo "== the insights report over the ledger (one HTML file that opens offline):"
rpm report --since 7d --html "$OUT/report.html"
echo "report:    $OUT/report.html"
exit "$rc"
