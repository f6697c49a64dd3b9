#!/usr/bin/env bash
# s3.sh up|down: the local cluster's S3-compatible server (hack/tools/s3server, gofakes3) on
# 127.0.0.1:$S3_PORT, its objects in $CLUSTER_DIR/s3.db (bolt) so a restart keeps them. Its one
# key is in $CLUSTER_DIR/s3-credentials, made once, in the AWS SDK's environment variables.
set -euo pipefail
. "$(dirname "$0")/env.sh"

up() {
  local bin
  bin=$("$ROOT/hack/build-s3server.sh")
  if [[ ! -f $CLUSTER_DIR/s3-credentials ]]; then
    mkdir -p "$CLUSTER_DIR"
    (umask 077; printf 'AWS_ACCESS_KEY_ID=exec-proxy-local\nAWS_SECRET_ACCESS_KEY=%s\n' "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" \
      >"$CLUSTER_DIR/s3-credentials")
  fi
  # shellcheck disable=SC1091
  . "$CLUSTER_DIR/s3-credentials"
  S3SERVER_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID S3SERVER_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \
    start s3server "$LOGS/s3server.log" "$bin" -addr "127.0.0.1:$S3_PORT" -bucket "$S3_BUCKET" -db "$CLUSTER_DIR/s3.db"
  WAIT_PROCESS=s3server wait_for "s3server on 127.0.0.1:$S3_PORT" 30 grep -q "listening on" "$LOGS/s3server.log" ||
    die "s3server not serving: see $LOGS/s3server.log"
}

down() { stop_pid s3server; }

case ${1:-} in
up) up ;;
down) down ;;
*) die "usage: s3.sh up|down" ;;
esac
