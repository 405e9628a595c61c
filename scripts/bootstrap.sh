#!/usr/bin/env bash
# Makes this machine ready for rollback-pm's demo and tests, installing only what is
# missing: Debian packages (docker.io, busybox-static, git, debootstrap, python3-venv, and
# chromium for the report's browser tests), a venv with the package and its report extra, and
# a running dockerd. Safe to run again; quiet when all is there.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${ROLLBACK_PM_VENV:-$ROOT/.venv}
say() { printf '[bootstrap] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else say "need root to run: $*"; exit 1; fi
}

# The system Python first: a venv made from it is usable by every user, which the tests
# that drop to another uid need (a pyenv under /root is not). ROLLBACK_PM_PYTHON overrides.
pick_python() {
  local candidate
  for candidate in "${ROLLBACK_PM_PYTHON:-}" /usr/bin/python3 python3; do
    if [ -z "$candidate" ] || ! command -v "$candidate" >/dev/null 2>&1; then continue; fi
    if "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))' >/dev/null 2>&1; then
      command -v "$candidate"; return 0
    fi
  done
  return 1
}
python_ok() { pick_python >/dev/null; }

pkgs=()
command -v dockerd >/dev/null 2>&1 || pkgs+=(docker.io)
command -v docker >/dev/null 2>&1 || pkgs+=(docker.io)
[ -x /bin/busybox ] || pkgs+=(busybox-static)
command -v git >/dev/null 2>&1 || pkgs+=(git)
# debootstrap builds the Debian test image (python3, PostgreSQL, nginx) the signal tests run real failures in
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || pkgs+=(debootstrap)
# chromium: the report's browser tests load the HTML report in it, headless
command -v chromium >/dev/null 2>&1 || pkgs+=(chromium)
python_ok || pkgs+=(python3 python3-venv)
if [ ${#pkgs[@]} -gt 0 ]; then
  say "installing Debian packages: ${pkgs[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

# The venv is rebuilt only when setup.cfg, the pins or the Python change. Runtime dependencies
# come at the versions the image gets (constraints.txt), the report extra's plotting library
# at its pins too; test tools as setup.cfg allows.
stamp="$VENV/.rollback-pm-setup.sha256"
PYTHON=$(pick_python) || { say "no Python >= 3.10 with venv and ensurepip; install python3-venv"; exit 1; }
want=$( (cat "$ROOT/setup.cfg" "$ROOT/pyproject.toml" "$ROOT/constraints.txt"; echo "$PYTHON") | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "creating venv $VENV with $PYTHON"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  pip_log="$VENV/pip-install.log"
  if ! "$VENV/bin/pip" install -e "${ROOT}[test,report]" --constraint "$ROOT/constraints.txt" >"$pip_log" 2>&1; then
    tail -n 30 "$pip_log" >&2; say "pip install failed (full log: $pip_log)"; exit 1
  fi
  echo "$want" >"$stamp"
fi

if ! docker info >/dev/null 2>&1; then
  if [ -n "${DOCKER_HOST:-}" ]; then
    say "DOCKER_HOST=$DOCKER_HOST does not answer; unset it to use a local dockerd"; exit 1
  fi
  say "starting dockerd (log: /var/log/rollback-pm-dockerd.log)"
  as_root sh -c 'nohup setsid dockerd --iptables=false --bridge=none >/var/log/rollback-pm-dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { say "dockerd did not start; see /var/log/rollback-pm-dockerd.log"; exit 1; }
fi
