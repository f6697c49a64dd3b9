# Shared helpers for hack/ scripts: timed progress lines and clear failures.
# shellcheck shell=bash
_step_start=$(date +%s)
log() { printf '[%s +%4ss] %s\n' "$(date +%H:%M:%S)" "$(( $(date +%s) - _step_start ))" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$(date +%H:%M:%S)" "$*" >&2; exit 1; }
