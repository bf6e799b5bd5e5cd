#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Entry point of the pointcast image: what the container is comes from its command.
#   daemon [FLAGS]       pointcast-signaling on 0.0.0.0:$PORT with the web viewer and the
#                        pipelines API; $POINTCAST_TOKEN becomes --token; then the words of
#                        $POINTCAST_DAEMON_FLAGS (e.g. from a ConfigMap), then FLAGS
#   NAME                 a pipeline from /usr/share/pointcast/pipelines (testsrc-sender,
#                        ball-sender, ball-tracker, camera-sender, ...), run by gst-launch-1.0 -e
#   sender | tracker     $SENDER_PIPELINE (default testsrc-sender) | ball-tracker
#   healthcheck          the daemon: GET /healthz answers 200; a pipeline: it is running
#   anything else        run as given (gst-inspect-1.0 rtcpeer, bash, ...)
# Pipelines take the signaling URL from POINTCAST_SIGNALING, or SIGNALING_URL as the seed
# compose files set it; rtcpeer takes POINTCAST_TOKEN from the environment. They wait (up to
# $SIGNALING_WAIT s, default 60) for the daemon to accept connections, so start order does not
# matter. POINTCAST_ROOM and POINTCAST_PEER_ID pass straight to rtcpeer.
set -euo pipefail
PIPELINES=/usr/share/pointcast/pipelines
ROLE_FILE=/tmp/pointcast-role

log() { printf '%s [INFO] entrypoint: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S')" "$*" >&2; }
die() { printf '%s [ERROR] entrypoint: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S')" "$*" >&2; exit 1; }

# GET http://127.0.0.1:$1$2 with bash's /dev/tcp (no curl in the image); true on a 200.
http_ok() {
  local status
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$2" "$1" >&3
  IFS= read -r -t 5 status <&3 || return 1
  exec 3<&-
  [[ "$status" == "HTTP/1."?" 200 "* ]]
}

# Wait until host:port of a ws:// or wss:// URL accepts TCP connections.
wait_for_signaling() {
  local url="$1" hostport host port deadline
  [[ "$url" =~ ^wss?://([^/?]+) ]] || return 0
  hostport="${BASH_REMATCH[1]}"
  host="${hostport%:*}"; port="${hostport##*:}"
  [ "$host" != "$hostport" ] || { host="$hostport"; port=80; [[ "$url" == wss:* ]] && port=443; }
  host="${host#[}"; host="${host%]}"
  deadline=$((SECONDS + ${SIGNALING_WAIT:-60}))
  until (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || die "signaling server $host:$port not reachable after ${SIGNALING_WAIT:-60} s"
    sleep 0.5
  done
}

run_pipeline() {
  local name="$1" file="$PIPELINES/$1.pipeline"
  [[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9_-]*$ ]] && [ -f "$file" ] \
    || die "no pipeline '$name' (have: $(cd "$PIPELINES" && ls -- *.pipeline | sed 's/\.pipeline$//' | tr '\n' ' '))"
  local url="${POINTCAST_SIGNALING:-${SIGNALING_URL:-ws://127.0.0.1:${PORT:-8765}/ws}}"
  # rtcpeer sends $POINTCAST_TOKEN as "Authorization: Bearer" (the daemon refuses a token in a URL).
  export POINTCAST_SIGNALING="$url"
  echo pipeline >"$ROLE_FILE" 2>/dev/null || true
  wait_for_signaling "$url"
  log "running $name (room ${POINTCAST_ROOM:-default}, signaling ${url%%\?*})"
  # The file's words, comment lines dropped, split on whitespace with globbing off: exactly
  # what `./pointcast launch` and the daemon's pipelines API run.
  local words
  set -f
  # shellcheck disable=SC2207
  words=($(grep -v '^[[:space:]]*#' "$file"))
  set +f
  exec gst-launch-1.0 -e "${words[@]}"
}

cmd="${1:-daemon}"; [ $# -gt 0 ] && shift
case "$cmd" in
  daemon)
    echo daemon >"$ROLE_FILE" 2>/dev/null || true
    args=(--host "${HOST:-0.0.0.0}" --web-root /usr/share/pointcast/web --pipelines-dir "$PIPELINES")
    [ -n "${POINTCAST_TOKEN:-}" ] && args+=(--token "$POINTCAST_TOKEN")
    set -f
    # shellcheck disable=SC2206  # split on spaces, no globbing
    args+=(${POINTCAST_DAEMON_FLAGS:-})
    set +f
    exec pointcast-signaling "${args[@]}" "$@" ;;
  sender) run_pipeline "${SENDER_PIPELINE:-testsrc-sender}" ;;
  tracker) run_pipeline ball-tracker ;;
  healthcheck)
    if [ "$(cat "$ROLE_FILE" 2>/dev/null)" = daemon ]; then http_ok "${PORT:-8765}" /healthz; fi ;;
  -*) die "unknown option $cmd (commands: daemon, sender, tracker, a pipeline name, healthcheck)" ;;
  *)
    if [ -f "$PIPELINES/$cmd.pipeline" ]; then run_pipeline "$cmd"; fi
    exec "$cmd" "$@" ;;
esac
