#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Suite `deploy`: the Debian packages, the container image, Compose and Kubernetes, for real.
#  1. dpkg-buildpackage -b builds the .debs from a copy of the source tree;
#  2. they are installed with apt into a fresh container of the local debian:bookworm-slim
#     (deploy/base-image.sh): gst-inspect-1.0 finds rtcpeer with no environment variable,
#     balldetect loads its OpenCV module, the unit file passes systemd-analyze verify, and its
#     ExecStart, run as the packaged user with /etc/default's flags, serves /healthz, / and the API;
#  3. deploy/Dockerfile is built with --pull=never, those .debs standing in for its build stage;
#     image size and daemon start time are printed;
#  4. deploy/compose.yaml runs under podman-compose: /healthz, the web page, the pipelines API
#     (token, start, the started sender registers, stop), the ball loop between the ball-sender
#     and tracker containers scores frames, a graceful stop prints ballscore's report; torn down;
#  5. deploy/k8s/ under podman kube play: the same checks, then podman kube down.
# Needs root and podman (./pointcast setup installs it); otherwise skipped.
set -euo pipefail

SRC="${POINTCAST_SOURCE_ROOT:?}"
BUILD="${POINTCAST_BUILD_ROOT:?}"
WORK="$BUILD/deploy-test"
export CONTAINERS_CONF="$SRC/deploy/containers.conf"
IMAGE=localhost/pointcast:latest
BASE=docker.io/library/debian:bookworm-slim
APT_CACHE="${POINTCAST_CACHE:-/var/cache/pointcast}/apt-archives"
PROJECT="pcdeploy$$"
TOKEN="$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
T0=$SECONDS

say() { printf '[deploy %3ds] %s\n' "$((SECONDS - T0))" "$*"; }
fail() { printf '[deploy] FAIL: %s\n' "$*" >&2; exit 1; }
skip() { printf '[deploy] SKIP: %s\n' "$*"; exit 77; }

[ "$(id -u)" -eq 0 ] || skip "needs root (rootful podman, debootstrap)"
for c in podman podman-compose debootstrap dpkg-buildpackage curl; do
  command -v "$c" >/dev/null || skip "$c is not installed (./pointcast setup installs it)"
done

# One run at a time per machine: the image tag, the secret and the pod names are global.
exec 9>/run/lock/pointcast-deploy-test.lock
flock -w 1800 9 || fail "another deploy test run holds /run/lock/pointcast-deploy-test.lock"

free_port() { /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# A container's whole log (grep reads a string: no SIGPIPE for podman under pipefail).
logs_of() { podman logs "$1" 2>&1 || true; }
quiet() { "$@" 2> >(grep -v 'level=\(warning\|error\) msg=".*\(systemd\|healthcheck\|syslog\)' >&2); }

# --- clean-up of everything this run starts -------------------------------------------------
KUBE_YAML=""
cleanup() {
  local rc=$?
  set +e
  if [ -n "$KUBE_YAML" ] && [ -f "$KUBE_YAML" ]; then
    podman kube down "$KUBE_YAML" >/dev/null 2>&1
    podman secret rm pointcast-token >/dev/null 2>&1
  fi
  if [ -f "$WORK/compose.env" ]; then
    (set -a; . "$WORK/compose.env"; podman-compose -p "$PROJECT" -f "$SRC/deploy/compose.yaml" down -t 2) >/dev/null 2>&1
  fi
  podman ps -aq --filter "label=io.podman.compose.project=$PROJECT" | xargs -r podman rm -f >/dev/null 2>&1
  podman rm -f "$PROJECT-start" >/dev/null 2>&1
  for net in "${PROJECT}_default" "$PROJECT-kube"; do podman network rm -f "$net" >/dev/null 2>&1; done
  exit "$rc"
}
trap cleanup EXIT

# GET/POST with curl; prints the body, checks the status.
http() {
  local want="$1" code; shift
  code="$(curl -sS -o "$WORK/body" -w '%{http_code}' "$@")" || fail "curl $* failed"
  [ "$code" = "$want" ] || fail "$* answered $code, expected $want: $(head -c 300 "$WORK/body")"
  cat "$WORK/body"
}

wait_healthz() {
  local port="$1" i
  for i in $(seq 300); do
    [ "$(curl -s "http://127.0.0.1:$port/healthz" 2>/dev/null)" = ok ] && return 0
    sleep 0.1
  done
  return 1
}

# The checks Compose and Kubernetes share: daemon on 127.0.0.1:$1, container names of the
# daemon ($2) and of the ball-sender ($3).
check_deployment() {
  local port="$1" daemon="$2" ballsender="$3" body id i
  wait_healthz "$port" || { logs_of "$daemon" | tail -20; fail "/healthz did not answer ok within 30 s"; }
  say "/healthz ok"
  http 200 "http://127.0.0.1:$port/" >"$WORK/index.html"
  cmp -s "$WORK/index.html" "$SRC/signaling/web/index.html" || fail "GET / is not the web viewer's index.html"
  http 200 "http://127.0.0.1:$port/app.js" >/dev/null
  say "web viewer served"
  http 401 "http://127.0.0.1:$port/api/pipelines" >/dev/null
  body="$(http 200 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port/api/pipelines")"
  /usr/bin/python3 -c '
import json, sys
names = {p["name"] for p in json.loads(sys.argv[1])["pipelines"]}
missing = {"ball-sender", "ball-tracker", "testsrc-sender", "camera-sender"} - names
sys.exit("pipelines missing from the API: %s" % sorted(missing) if missing else 0)' "$body"
  # A sender started through the API is a child of the daemon inside its container: it must
  # come up and register (the token reaches it through its signaling URL).
  body="$(http 201 -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"room":"api-check"}' "http://127.0.0.1:$port/api/pipelines/testsrc-sender/start")"
  id="$(/usr/bin/python3 -c 'import json, sys; print(json.loads(sys.argv[1])["id"])' "$body")"
  for i in $(seq 200); do
    grep -q "registered in room api-check" <<<"$(logs_of "$daemon")" && break
    [ "$i" -lt 200 ] || { logs_of "$daemon" | tail -20; fail "the sender started through the API never registered"; }
    sleep 0.1
  done
  http 202 -X DELETE -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port/api/pipelines/$id" >/dev/null
  say "pipelines API: listed, started $id (registered), stopped"
  # The ball loop between two containers: ballscore's progress line in the ball-sender's log.
  local line="" frames=0 mean=99
  for i in $(seq 240); do
    line="$(logs_of "$ballsender" | grep '^ballscore: frames' | tail -1 || true)"
    if [[ "$line" =~ detections\ ([0-9]+),\ error\ mean\ ([0-9.]+)\ px ]]; then
      frames="${BASH_REMATCH[1]}"; mean="${BASH_REMATCH[2]}"
      [ "$frames" -ge 90 ] && break
    fi
    sleep 0.5
  done
  [ "$frames" -ge 90 ] || { logs_of "$ballsender" | tail -20; fail "the ball loop scored $frames detections in 120 s (want >= 90)"; }
  awk -v m="$mean" 'BEGIN { exit !(m <= 1.0) }' || fail "ball loop error mean $mean px > 1 px: $line"
  say "ball loop: $line"
}

mkdir -p "$WORK" "$APT_CACHE"
rm -rf "${WORK:?}"/*

# --- 1. the .debs ---------------------------------------------------------------------------
say "building the .debs (dpkg-buildpackage -b)"
pkgsrc="$WORK/src/pointcast-0.1.0"
mkdir -p "$pkgsrc"
tar -C "$SRC" --exclude='./build*' --exclude=node_modules --exclude=.git --exclude='./obj-*' -cf - . \
  | tar -C "$pkgsrc" -xf -
# debhelper gives the build a HOME of its own, so ccache is pointed at the usual cache
# explicitly (the copy sits at the same path every run, so unchanged files hit).
ccache_dir="${CCACHE_DIR:-$(ccache -k cache_dir 2>/dev/null || echo "${POINTCAST_CACHE:-/var/cache/pointcast}/ccache")}"
(cd "$pkgsrc" && nice env CCACHE_DIR="$ccache_dir" DEB_BUILD_OPTIONS="parallel=$(nproc) noautodbgsym" \
  dpkg-buildpackage -b -uc -us) \
  >"$WORK/dpkg-buildpackage.log" 2>&1 || { tail -30 "$WORK/dpkg-buildpackage.log"; fail "dpkg-buildpackage failed"; }
mkdir -p "$WORK/debs"
mv "$WORK"/src/*.deb "$WORK/debs/"
for p in gstreamer1.0-pointcast pointcast-signaling pointcast-pipelines; do
  ls "$WORK/debs/${p}_"*.deb >/dev/null 2>&1 || fail "no $p .deb was built"
done
contents="$(for d in "$WORK"/debs/*.deb; do dpkg-deb -c "$d"; done | awk '{print $6}')"
for f in ./usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstpointcast.so \
         ./usr/lib/x86_64-linux-gnu/gstreamer-1.0/libpcballdetect.so.0 \
         ./usr/bin/pointcast-signaling ./lib/systemd/system/pointcast-signaling.service \
         ./etc/default/pointcast-signaling ./usr/share/pointcast/web/index.html \
         ./usr/share/pointcast/pipelines/ball-sender.pipeline; do
  grep -qxF "$f" <<<"$contents" || fail "$f is in none of the .debs"
done
say "built: $(cd "$WORK/debs" && ls | tr '\n' ' ')"

# --- 2. apt install into a fresh Debian ------------------------------------------------------
"$SRC/deploy/base-image.sh" podman
say "installing the .debs with apt into a fresh $BASE container"
cat >"$WORK/install-check.sh" <<'INNER'
set -euo pipefail
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends /debs/*.deb >/tmp/apt.log 2>&1 \
  || { tail -20 /tmp/apt.log; exit 1; }
# No GST_PLUGIN_PATH, no other variable: the plugin is where GStreamer looks.
env -i PATH=/usr/bin:/bin HOME=/tmp gst-inspect-1.0 rtcpeer >/tmp/inspect.txt
grep -q 'WebRTC peer' /tmp/inspect.txt || { echo "gst-inspect-1.0 rtcpeer: no rtcpeer"; exit 1; }
# balldetect loads libpcballdetect.so.0 from the plugin's folder when it starts.
env -i PATH=/usr/bin:/bin HOME=/tmp gst-launch-1.0 -q ballsrc num-buffers=5 mark=true \
  ! video/x-raw,width=320,height=240 ! videoconvert ! balldetect ! npypack ! fakesink
getent passwd pointcast | awk -F: '$3 == 0 || $3 >= 1000 { print "pointcast is not a system user: " $0; exit 1 }'
unit=/lib/systemd/system/pointcast-signaling.service
out="$(systemd-analyze verify "$unit" 2>&1)" || { echo "systemd-analyze verify: $out"; exit 1; }
[ -z "$out" ] || { echo "systemd-analyze verify warns: $out"; exit 1; }
# ExecStart as systemd would run it: User/Group of the unit, EnvironmentFile's variables.
set -a; . /etc/default/pointcast-signaling; set +a
exec_line="$(sed -n 's/^ExecStart=//p' "$unit")"
user="$(sed -n 's/^User=//p' "$unit")"
eval "cmd=($exec_line)"
setpriv --reuid "$user" --regid "$user" --init-groups "${cmd[@]}" >/tmp/daemon.log 2>&1 &
get() { exec 3<>/dev/tcp/127.0.0.1/8765 && printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1:8765\r\n\r\n' "$1" >&3 && cat <&3; }
for i in $(seq 100); do get /healthz 2>/dev/null | grep -q '^ok' && break; sleep 0.1; done
get /healthz | grep -q '^ok' || { cat /tmp/daemon.log; echo "ExecStart: no /healthz"; exit 1; }
get / | grep -q '<html' || { echo "ExecStart: / is not the web viewer"; exit 1; }
get /api/pipelines | grep -q '"name":"ball-tracker"' || { echo "ExecStart: pipelines API lists no ball-tracker"; exit 1; }
ps -o user= -p $! 2>/dev/null | grep -q pointcast || [ "$(stat -c %U /proc/$!)" = pointcast ] \
  || { echo "ExecStart does not run as pointcast"; exit 1; }
kill -TERM $!; wait $! || { cat /tmp/daemon.log; echo "the daemon did not exit 0 on SIGTERM"; exit 1; }
echo "install-check ok"
INNER
quiet podman run --rm --pull=never -v "$WORK/debs:/debs:ro" -v "$APT_CACHE:/var/cache/apt/archives" \
  -v "$WORK/install-check.sh:/install-check.sh:ro" "$BASE" bash /install-check.sh >"$WORK/install-check.log" 2>&1 \
  || { tail -30 "$WORK/install-check.log"; fail "the .debs do not work in a fresh Debian"; }
say "apt install ok: rtcpeer found without GST_PLUGIN_PATH, balldetect ran, unit verified, ExecStart served /healthz, / and /api/pipelines as user pointcast"

# --- 3. the image ----------------------------------------------------------------------------
# The .debs just built replace the Dockerfile's build stage (--build-context build=...), which
# would compile the same sources again; POINTCAST_DEPLOY_FULL_BUILD=1 runs that stage instead
# (the -dev packages and a compile inside: about 6 min more).
mkdir -p "$WORK/prebuilt/debs"
cp "$WORK"/debs/*.deb "$WORK/prebuilt/debs/"
build_args=(--build-context "build=$WORK/prebuilt")
how="the .debs above as stage build"
if [ "${POINTCAST_DEPLOY_FULL_BUILD:-0}" = 1 ]; then build_args=(); how="multi-stage, compiling in stage build"; fi
old_image="$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
say "building $IMAGE (podman build --pull=never, $how)"
t=$SECONDS
quiet nice podman build --pull=never --format docker "${build_args[@]}" \
  -f "$SRC/deploy/Dockerfile" -t "$IMAGE" "$SRC" >"$WORK/image-build.log" 2>&1 \
  || { tail -30 "$WORK/image-build.log"; fail "image build failed"; }
# The image this one replaces (now untagged) goes, so runs do not pile up images.
[ -z "$old_image" ] || [ "$old_image" = "$(podman image inspect --format '{{.Id}}' "$IMAGE")" ] \
  || podman rmi "$old_image" >/dev/null 2>&1 || true
size="$(podman image inspect --format '{{.Size}}' "$IMAGE")"
say "image built in $((SECONDS - t)) s, $((size / 1000000)) MB"
[ "$(podman image inspect --format '{{.Config.User}}' "$IMAGE")" = 10001 ] || fail "the image does not run as uid 10001"
port="$(free_port)"
t0="$(date +%s%N)"
quiet podman run -d --init --name "$PROJECT-start" -p "127.0.0.1:$port:8765" -e POINTCAST_TOKEN="$TOKEN" "$IMAGE" >/dev/null
wait_healthz "$port" || fail "the daemon container did not answer /healthz"
t1="$(date +%s%N)"
quiet podman healthcheck run "$PROJECT-start" || fail "the image's HEALTHCHECK fails on a running daemon"
quiet podman stop -t 10 "$PROJECT-start" >/dev/null
t2="$(date +%s%N)"
say "daemon container: /healthz $(( (t1 - t0) / 1000000 )) ms after podman run, stopped in $(( (t2 - t1) / 1000000 )) ms"
quiet podman rm "$PROJECT-start" >/dev/null

# --- 4. Compose ------------------------------------------------------------------------------
port="$(free_port)"
printf 'PORT=%s\nPOINTCAST_TOKEN=%s\nLOG_LEVEL=INFO\n' "$port" "$TOKEN" >"$WORK/compose.env"
say "podman-compose up (project $PROJECT, port $port)"
(set -a; . "$WORK/compose.env"; quiet podman-compose -p "$PROJECT" -f "$SRC/deploy/compose.yaml" up -d) \
  >"$WORK/compose-up.log" 2>&1 || { tail -30 "$WORK/compose-up.log"; fail "podman-compose up failed"; }
check_deployment "$port" "${PROJECT}_daemon_1" "${PROJECT}_ball-sender_1"
grep -q '(testsrc-sender) registered in room default' <<<"$(logs_of "${PROJECT}_daemon_1")" \
  || fail "the compose test-pattern sender did not register"
quiet podman healthcheck run "${PROJECT}_daemon_1" || fail "compose's daemon healthcheck fails"
# SIGINT through the init process: gst-launch -e ends with EOS and ballscore reports.
t=$SECONDS
quiet podman stop -t 20 "${PROJECT}_ball-sender_1" >/dev/null
grep -q '^  latency ms:' <<<"$(logs_of "${PROJECT}_ball-sender_1")" \
  || { logs_of "${PROJECT}_ball-sender_1" | tail; fail "the ball-sender stopped without ballscore's report"; }
say "ball-sender stopped in $((SECONDS - t)) s with ballscore's report"
(set -a; . "$WORK/compose.env"; quiet podman-compose -p "$PROJECT" -f "$SRC/deploy/compose.yaml" down -t 5) \
  >"$WORK/compose-down.log" 2>&1 || { tail -20 "$WORK/compose-down.log"; fail "podman-compose down failed"; }
rm -f "$WORK/compose.env"
[ -z "$(podman ps -aq --filter "label=io.podman.compose.project=$PROJECT")" ] || fail "containers left after down"
podman network rm -f "${PROJECT}_default" >/dev/null 2>&1 || true
say "compose torn down"

# --- 5. Kubernetes with podman kube play -----------------------------------------------------
# podman 4.3 differs from a cluster in three ways the copy below adapts to, nothing else:
# there are no Services (the pod's own DNS name, pointcast-signaling-pod-0, stands in for the
# Service), containerPorts are published on the host (a free port instead of 8765), and
# secretKeyRef reads a podman secret holding JSON (made here with this run's token, as
# `kubectl create secret` would, instead of secret.yaml's placeholder).
port="$(free_port)"
kube="$WORK/k8s"
mkdir -p "$kube"
KUBE_YAML="$kube/all.yaml"
for f in "$SRC"/deploy/k8s/*.yaml; do
  [ "$(basename "$f")" = secret.yaml ] && continue
  printf -- '---\n'; cat "$f"
done | sed -e "s/8765/$port/g" -e "s#ws://pointcast-signaling:#ws://pointcast-signaling-pod-0:#" >"$KUBE_YAML"
podman secret rm pointcast-token >/dev/null 2>&1 || true
printf '{"token":"%s"}' "$(printf %s "$TOKEN" | base64 -w0)" | podman secret create pointcast-token - >/dev/null
podman network create "$PROJECT-kube" >/dev/null
say "podman kube play deploy/k8s (port $port)"
quiet podman kube play --network "$PROJECT-kube" "$KUBE_YAML" >"$WORK/kube-play.log" 2>&1 \
  || { tail -20 "$WORK/kube-play.log"; fail "podman kube play failed"; }
for c in pointcast-signaling-pod-0-daemon pointcast-sender-pod-0-sender pointcast-tracker-pod-0-tracker; do
  [ "$(podman inspect --format '{{.Config.User}} {{.HostConfig.ReadonlyRootfs}}' "$c")" = "10001:10001 true" ] \
    || fail "$c does not run as 10001 with a read-only root"
done
check_deployment "$port" pointcast-signaling-pod-0-daemon pointcast-sender-pod-0-sender
quiet podman kube down "$KUBE_YAML" >"$WORK/kube-down.log" 2>&1 || { cat "$WORK/kube-down.log"; fail "podman kube down failed"; }
podman secret rm pointcast-token >/dev/null
KUBE_YAML=""
[ -z "$(podman pod ps -q --filter name=pointcast-)" ] || fail "pods left after podman kube down"
podman network rm -f "$PROJECT-kube" >/dev/null
say "kube down; all checks passed"
