# shellcheck shell=bash
# Daemons found and stopped by the PID they record themselves: shared by
# hack/control-plane.sh and hack/local-cluster.sh (sourced, not run).
#
# The sourcing script sets
#   daemon_dir      where NAME.pid files live
#   daemon_logs     where NAME.log files go
#   daemon_prefix   (array, may be empty) a command prefix for every daemon,
#                   e.g. (nsenter --net=/run/netns/X --)
#   daemon_groups   (space-separated names) daemons stopped with their whole
#                   process group
# and defines log MSG, die MSG, and owns NAME PID: whether PID still runs
# that script's daemon NAME (its binary, its state directory), so that a
# recycled PID or another instance's daemon is never taken for ours.

# cmdline PID prints the process's command line with spaces between arguments.
cmdline() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null; }

# running NAME prints the PID of the daemon NAME when it runs.
running() {
  local pid
  pid="$(cat "${daemon_dir}/$1.pid" 2>/dev/null)" || return 1
  owns "$1" "$pid" || return 1
  echo "$pid"
}

# start_daemon NAME CMD...: run CMD in a session of its own, output to
# daemon_logs/NAME.log, and wait until it has written its real PID to
# daemon_dir/NAME.pid. The inner shell writes its own PID ($$) and execs CMD,
# so the file holds CMD's PID even where setsid has to fork ($! would be the
# wrong process). Descriptors 8 and 9 (the scripts' locks) are closed: a
# daemon that kept them would hold the locks for its lifetime.
start_daemon() {
  local name=$1 pidfile="${daemon_dir}/$1.pid" i
  shift
  rm -f "$pidfile"
  # shellcheck disable=SC2016 # $$, $0 and $@ belong to the inner shell
  setsid "${daemon_prefix[@]}" bash -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pidfile" "$@" \
    >>"${daemon_logs}/${name}.log" 2>&1 </dev/null 8>&- 9>&- &
  for i in $(seq 100); do
    [[ -s "$pidfile" ]] && return 0
    sleep 0.05
  done
  die "${name} did not start (no ${pidfile}); see ${daemon_logs}/${name}.log"
}

# stop_daemon NAME: SIGTERM, up to 15s to exit, then SIGKILL.
stop_daemon() {
  local name=$1 pid target i
  pid="$(running "$name")" || {
    rm -f "${daemon_dir}/${name}.pid"
    return 0
  }
  if [[ "$pid" == "$$" ]]; then # the daemon is this very script (a watchdog running `down`)
    rm -f "${daemon_dir}/${name}.pid"
    return 0
  fi
  target="$pid"
  [[ " ${daemon_groups:-} " == *" ${name} "* ]] && target="-${pid}"
  kill -TERM -- "$target" 2>/dev/null || true
  for i in $(seq 60); do
    owns "$name" "$pid" || break
    sleep 0.25
  done
  if owns "$name" "$pid"; then
    log "${name} (pid ${pid}) ignored SIGTERM for 15s; sending SIGKILL"
    kill -KILL -- "$target" 2>/dev/null || true
    for i in $(seq 40); do
      owns "$name" "$pid" || break
      sleep 0.25
    done
  fi
  owns "$name" "$pid" && die "${name} (pid ${pid}) survived SIGKILL"
  rm -f "${daemon_dir}/${name}.pid"
  log "stopped ${name} (pid ${pid})"
}

# fail_start NAME WHY: show the end of the daemon's log and give up.
fail_start() {
  log "$2; last lines of ${daemon_logs}/$1.log:"
  tail -n 30 "${daemon_logs}/$1.log" >&2 || true
  exit 1
}

# write_file PATH MODE: stdin to PATH through a temporary file and a rename.
write_file() {
  local tmp
  tmp="$(mktemp "$1.XXXXXX")"
  cat >"$tmp"
  chmod "$2" "$tmp"
  mv -f "$tmp" "$1"
}
