# shellcheck shell=bash
# What the hack/ scripts share (sourced, not run): their messages, their exit
# codes, and Go.
#
# The sourcing script sets log_prefix, its name in messages, before it calls
# any of these. Exit codes, the same in every script: 1 a failure, 3 a
# missing prerequisite (make e2e reports it as a skip).

# log MSG: a line on standard error, after the script's name.
log() { echo "${log_prefix:?log_prefix is not set}: $*" >&2; }

# die MSG: log MSG and exit 1.
die() {
  log "$*"
  exit 1
}

# missing_prerequisite MSG: log MSG and exit 3.
missing_prerequisite() {
  log "$*"
  exit 3
}

# go_cmd prints the go command: GO, go on PATH, or /usr/local/go/bin/go
# (sudo's PATH may lack it).
go_cmd() {
  local go="${GO:-$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)}"
  command -v "$go" >/dev/null 2>&1 || missing_prerequisite "Go not found (set GO=/path/to/go)"
  echo "$go"
}
