#!/usr/bin/env bash
# Installs the schedule that runs `rollback-pm check-deadlines` every 15 minutes: a cron
# entry in /etc/cron.d (default) or a systemd service + timer (--systemd). Idempotent: a
# second run with the same options changes nothing, different options replace the entry
# (never a second one), and installing one kind removes the other. --uninstall removes both.
#
#   scripts/install-cron.sh [--user USER] [--state-dir DIR] [--env-file FILE] [--config FILE]
#                           [--bin PATH] [--every MINUTES] [--mailto ADDR] [--systemd [--no-enable]]
#                           [--cron-dir DIR] [--systemd-dir DIR] [--force] [--uninstall]
#
# --systemd enables the timer with systemctl when the units go to /etc/systemd/system on a
# host running systemd; otherwise (or with --no-enable) it prints the command to run.
#
# The job runs as --user (default: the owner of the state dir, so the ledger stays
# writable; root if the dir does not exist yet), with the state dir given as a flag, and
# reads its settings and secrets (ROLLBACK_PM_TRACKER_TOKEN, ROLLBACK_PM_WEBHOOK_URL, ...)
# from the env file (KEY=VALUE lines, default /etc/rollback-pm/env, used when present)
# so none of them appears in the cron or unit file.
set -euo pipefail

NAME=rollback-pm                 # /etc/cron.d/rollback-pm (cron.d names may not contain dots)
UNIT=rollback-pm-deadlines       # rollback-pm-deadlines.service / .timer
MARKER="# Managed by rollback-pm install-cron.sh; edits are overwritten, remove with --uninstall."

user="" state_dir=/var/lib/rollback-pm env_file=/etc/rollback-pm/env config="" bin="" every=15 mailto=""
mode=cron enable=1 cron_dir=/etc/cron.d systemd_dir=/etc/systemd/system force=0 uninstall=0

say() { printf 'install-cron: %s\n' "$*"; }
die() { printf 'install-cron: %s\n' "$1" >&2; exit "${2:-1}"; }
usage() { sed -n '2,19s/^# \{0,1\}//p' "$0"; }

need_value() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value; see --help" 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --user) need_value "$@"; user=$2; shift 2 ;;
    --state-dir) need_value "$@"; state_dir=$2; shift 2 ;;
    --env-file) need_value "$@"; env_file=$2; shift 2 ;;
    --config) need_value "$@"; config=$2; shift 2 ;;
    --bin) need_value "$@"; bin=$2; shift 2 ;;
    --every) need_value "$@"; every=$2; shift 2 ;;
    --mailto) need_value "$@"; mailto=$2; shift 2 ;;
    --systemd) mode=systemd; shift ;;
    --no-enable) enable=0; shift ;;
    --cron-dir) need_value "$@"; cron_dir=$2; shift 2 ;;
    --systemd-dir) need_value "$@"; systemd_dir=$2; shift 2 ;;
    --force) force=1; shift ;;
    --uninstall) uninstall=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1; see --help" 2 ;;
  esac
done

cron_file="$cron_dir/$NAME"
service_file="$systemd_dir/$UNIT.service"
timer_file="$systemd_dir/$UNIT.timer"

ours() { [ -f "$1" ] && grep -qxF "$MARKER" "$1"; }

# systemctl only for units where systemd looks for them, on a host that runs systemd.
systemctl_usable() {
  [ "$enable" -eq 1 ] && [ "$systemd_dir" = /etc/systemd/system ] && [ -d /run/systemd/system ] &&
    command -v systemctl >/dev/null 2>&1
}

remove_file() {  # path: remove it if this script wrote it; report what happened
  if [ ! -e "$1" ]; then return 1; fi
  if ! ours "$1"; then
    say "left $1 alone: it was not written by install-cron.sh"
    return 1
  fi
  rm -f "$1"
  say "removed $1"
}

remove_cron() { remove_file "$cron_file" || true; }

remove_systemd() {
  if [ -e "$timer_file" ] && ours "$timer_file" && systemctl_usable; then
    systemctl disable --now "$UNIT.timer" >/dev/null 2>&1 || true
  fi
  local removed=0
  remove_file "$timer_file" && removed=1
  remove_file "$service_file" && removed=1
  if [ "$removed" -eq 1 ] && systemctl_usable; then systemctl daemon-reload; fi
  return 0
}

if [ "$uninstall" -eq 1 ]; then
  [ -e "$cron_file" ] || [ -e "$service_file" ] || [ -e "$timer_file" ] || say "nothing to remove"
  remove_cron
  remove_systemd
  exit 0
fi

# -- validate ---------------------------------------------------------------------------
case "$every" in
  ''|*[!0-9]*) die "--every must be whole minutes between 1 and 59, not '$every'" 2 ;;
esac
[ "$every" -ge 1 ] && [ "$every" -le 59 ] || die "--every must be whole minutes between 1 and 59, not '$every'" 2

if [ -z "$bin" ]; then
  bin=$(command -v rollback-pm || true)
  [ -n "$bin" ] || die "rollback-pm is not on PATH; install it (pip install .) or give --bin /path/to/rollback-pm" 2
fi
case "$bin" in /*) ;; *) bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")" ;; esac
[ -x "$bin" ] || die "$bin is not an executable; give --bin /path/to/rollback-pm" 2

for value in "$state_dir" "$env_file" "$config" "$bin" "$mailto"; do
  case "$value" in
    *"'"*|*'%'*|*'"'*|*\\*|*[[:space:]]*)
      die "'$value': paths and addresses with quotes, backslashes, % or spaces cannot go into a cron or unit file" 2 ;;
  esac
done
case "$state_dir" in /*) ;; *) die "--state-dir must be an absolute path" 2 ;; esac
case "$env_file" in /*) ;; *) die "--env-file must be an absolute path" 2 ;; esac

if [ -z "$user" ]; then
  if [ -d "$state_dir" ]; then user=$(stat -c %U "$state_dir"); else user=root; fi
fi
id -u "$user" >/dev/null 2>&1 || die "user '$user' does not exist; give --user (the owner of $state_dir)" 2
if [ -d "$state_dir" ]; then
  owner=$(stat -c %U "$state_dir")
  [ "$owner" = "$user" ] || [ "$user" = root ] ||
    say "warning: $state_dir is owned by $owner, not $user; the job needs to write its ledger and lock there"
else
  say "note: $state_dir does not exist yet; the first hook or check creates it"
fi
if [ -e "$env_file" ]; then
  perms=$(stat -c %a "$env_file")
  case "$perms" in *[1-7]) say "warning: $env_file is readable by everyone (mode $perms); it holds secrets: chmod 600 it" ;; esac
else
  say "note: $env_file does not exist; the job runs with the config file only (create it for tokens: KEY=VALUE lines, mode 600)"
fi

args="--state-dir '$state_dir'"
[ -z "$config" ] || args="--config '$config' $args"
command_line="'$bin' $args check-deadlines --quiet"

# -- write ------------------------------------------------------------------------------
install_file() {  # path mode content: atomic, only when different; refuses foreign files
  local path=$1 mode=$2 content=$3 dir tmp
  dir=$(dirname "$path")
  if [ -e "$path" ] && ! ours "$path" && [ "$force" -eq 0 ]; then
    die "$path exists and was not written by install-cron.sh; move it away or give --force"
  fi
  if [ -f "$path" ] && [ "$(cat "$path")" = "$content" ]; then
    say "unchanged $path"
    return 1
  fi
  mkdir -p "$dir" || die "cannot create $dir; run as root or choose another directory"
  tmp=$(mktemp "$dir/.$(basename "$path").XXXXXX") || die "cannot write in $dir; run as root"
  printf '%s\n' "$content" > "$tmp"
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$path"
  say "wrote $path"
}

if [ "$mode" = cron ]; then
  cron_content="$MARKER
# Runs rollback-pm check-deadlines every $every minutes as $user: warns before and escalates
# once after the postmortem deadline; prints (and cron mails) only what it did.
SHELL=/bin/sh
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  [ -z "$mailto" ] || cron_content="$cron_content
MAILTO=$mailto"
  cron_content="$cron_content
*/$every * * * * $user set -a; [ ! -e '$env_file' ] || . '$env_file'; set +a; exec $command_line"
  install_file "$cron_file" 0644 "$cron_content" || true
  remove_systemd
  exit 0
fi

service_content="$MARKER
[Unit]
Description=rollback-pm check-deadlines: the postmortem deadline clock
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
User=$user
EnvironmentFile=-$env_file
ExecStart=$command_line"
timer_content="$MARKER
[Unit]
Description=Run rollback-pm check-deadlines every $every minutes

[Timer]
OnCalendar=*:0/$every
Persistent=true
AccuracySec=30s

[Install]
WantedBy=timers.target"
changed=0
install_file "$service_file" 0644 "$service_content" && changed=1
install_file "$timer_file" 0644 "$timer_content" && changed=1
remove_cron
if systemctl_usable; then
  [ "$changed" -eq 0 ] || systemctl daemon-reload
  systemctl enable --now "$UNIT.timer" >/dev/null
  say "enabled $UNIT.timer"
else
  say "to start it: systemctl daemon-reload && systemctl enable --now $UNIT.timer"
fi
