#!/usr/bin/env bash
# Build the container image and run it as its non-root user, then check it serves: the notice and
# its stylesheet, /healthz, the HEALTHCHECK command, a hit stored (read through the API with the
# first admin token, taken from its 0600 file in the data volume and never from the output).
#
# Machines without a container daemon (CI, these build hosts): buildah builds with vfs storage, the
# base image is made from Debian's packages with mmdebstrap (no registry needed), and the image's
# command runs chrooted into a working container on the host network (`buildah run
# --isolation=chroot`), which is what `podman run` would do where it can start containers.
# Opt-in (`make image-test`): a few minutes, and root or sudo for apt and buildah.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
STORAGE="--storage-driver=vfs"
BASE_IMAGE="localhost/seized-base:bookworm"
IMAGE="localhost/seized:image-test"

# Tools, from Debian's packages, only those missing, nothing else upgraded.
missing=""
for tool in podman buildah mmdebstrap curl; do command -v "$tool" >/dev/null || missing="$missing $tool"; done
if [ -n "$missing" ]; then
    $SUDO apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends --no-upgrade $missing
fi
BUILDAH=(${SUDO} buildah "$STORAGE")
PODMAN=(${SUDO} podman "$STORAGE")

# The base: Debian's python3 and venv module (about 20 s; kept for the next run).
if ! "${PODMAN[@]}" image exists "$BASE_IMAGE"; then
    tarball=$(mktemp --suffix=.tar)
    $SUDO mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$tarball"
    "${PODMAN[@]}" import --quiet "$tarball" "$BASE_IMAGE" >/dev/null
    $SUDO rm -f "$tarball"
fi

# Docker format: OCI image configs have no HEALTHCHECK. pip in the build reaches PyPI through the
# host's network, with the host's CA bundle.
"${BUILDAH[@]}" bud --quiet --format docker --layers --network=host --isolation=chroot \
    -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
    --build-arg BASE="$BASE_IMAGE" -t "$IMAGE" . >/dev/null
"${PODMAN[@]}" image prune --force >/dev/null  # the previous run's image, now untagged (vfs keeps full copies)

fail() { echo "image-test: FAIL: $*" >&2; exit 1; }
config=$("${BUILDAH[@]}" inspect --type image --format '{{.Docker.Config.User}} {{.Docker.Config.Healthcheck.Test}} {{.Docker.Config.Volumes}}' "$IMAGE")
echo "image-test: image config: $config"
[[ $config == "seized ["*"seized healthcheck"* ]] || fail "the image must run as user seized with a seized healthcheck"
for volume in /var/lib/seized /etc/seized /var/lib/GeoIP; do [[ $config == *"$volume:"* ]] || fail "no volume $volume"; done

work=$(mktemp -d)
container=$("${BUILDAH[@]}" from --quiet "$IMAGE")
server=""
cleanup() {
    [ -z "$server" ] || $SUDO kill -TERM -- "-$server" 2>/dev/null || true
    [ -z "$server" ] || wait "$server" 2>/dev/null || true
    "${BUILDAH[@]}" rm "$container" >/dev/null || true
    $SUDO rm -rf "$work"
}
trap cleanup EXIT

# The data volume: a host folder owned by the image's seized user (no user namespace here, so its
# uid is the same outside).
uid=$("${BUILDAH[@]}" run --isolation=chroot "$container" -- id -u seized)
mkdir "$work/data"
$SUDO chown "$uid" "$work/data"
$SUDO chmod 0700 "$work/data"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
public=$(free_port); admin=$(free_port)
env=(env "SEIZED_PUBLIC=127.0.0.1:$public" "SEIZED_ADMIN=127.0.0.1:$admin" "SEIZED_NODE=image-test" "SEIZED_PRERENDER_VIDEOS=false")
run_as_seized() { "${BUILDAH[@]}" run --isolation=chroot --user seized -v "$work/data:/var/lib/seized" "$container" -- "$@"; }

# The image's own command, with its configuration, in its own process group (stopped as a whole).
setsid "${BUILDAH[@]}" run --isolation=chroot --user seized -v "$work/data:/var/lib/seized" "$container" -- \
    "${env[@]}" seized serve --config /etc/seized/seized.toml >"$work/output.log" 2>&1 &
server=$!

for _ in $(seq 120); do
    curl -fsS "http://127.0.0.1:$admin/healthz" >/dev/null 2>&1 && break
    kill -0 "$server" 2>/dev/null || { cat "$work/output.log"; fail "seized exited at start"; }
    sleep 1
done
curl -fsS "http://127.0.0.1:$admin/healthz" | grep -q '"status":"ok"' || { cat "$work/output.log"; fail "no /healthz"; }
echo "image-test: /healthz ok"

run_as_seized "${env[@]}" seized healthcheck --config /etc/seized/seized.toml --ready --public --timeout 5 \
    || fail "seized healthcheck (the HEALTHCHECK command) failed in the container"

marker="image-test-$RANDOM$RANDOM"
status=$(curl -sS -o "$work/notice.html" -w '%{http_code}' -H 'Host: seized-iptv.example' "http://127.0.0.1:$public/$marker")
[ "$status" = 451 ] && grep -q 'CASE-2026-0001' "$work/notice.html" || fail "the notice: HTTP $status"
curl -fsS "http://127.0.0.1:$public/_seized/notice.css" | grep -q '{' || fail "no stylesheet"
echo "image-test: notice (451) and stylesheet served"

token_file="$work/data/initial-admin-token"
[ "$($SUDO stat -c '%a %u' "$token_file")" = "600 $uid" ] || fail "the admin token file must be mode 0600, owned by seized"
admin_token=$($SUDO cat "$token_file")
! grep -qF "$admin_token" "$work/output.log" || fail "the admin token is in the output"
grep -qF "/var/lib/seized/initial-admin-token" "$work/output.log" || fail "the output does not say where the token is"
# The admin manages tokens; reading hits takes an investigator's.
token=$(curl -fsS -H "Authorization: Bearer $admin_token" -H 'Content-Type: application/json' \
    -d '{"name": "image-test", "role": "investigator"}' "http://127.0.0.1:$admin/api/v1/tokens" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
for _ in $(seq 60); do
    curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:$admin/api/v1/hits?limit=100" >"$work/hits.json" \
        && grep -qF "/$marker" "$work/hits.json" && break
    sleep 1
done
grep -qF "/$marker" "$work/hits.json" || fail "the hit was not stored"
echo "image-test: hit stored, read with the token from the 0600 file"

# SIGTERM to seized's supervisor, as a container runtime sends it (buildah itself would kill the
# container's processes outright); the oldest `seized serve` of our process group is the supervisor.
supervisor=$(pgrep -o -g "$server" -f "bin/seized serve") || fail "no seized supervisor in process group $server"
$SUDO kill -TERM "$supervisor"
code=0; wait "$server" || code=$?
server=""
grep -q "seized stopped" "$work/output.log" || { cat "$work/output.log"; fail "seized did not stop cleanly on SIGTERM (exit $code)"; }
echo "image-test: stopped cleanly on SIGTERM; all checks passed"
