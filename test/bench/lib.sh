# test/bench/lib.sh — the throwaway cluster of the benchmarks (sourced from the
# repository root).  Needs DIR (its directory: data, socket, log) and PORT;
# honours PG_CONFIG (the PostgreSQL installation) and KEEP (leave it running).
#
#   . test/bench/lib.sh
#   bench_cluster_start <<CONF
#   shared_preload_libraries = 'taskflow'
#   CONF
#   psql_ -c "CREATE EXTENSION taskflow"
#   helper & bench_at_exit "kill $!"     # more to undo at exit (even with KEEP)
BIN=$("${PG_CONFIG:-pg_config}" --bindir)
as_pg() { runuser -u postgres -- "$@"; }
psql_() { as_pg "$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -d postgres "$@"; }

# at exit: the commands given to bench_at_exit, in that order (each runs whatever
# the others did), then the cluster stops if bench_cluster_start started it
# without KEEP set
BENCH_AT_EXIT= BENCH_STOP=
bench_exit() {
  eval "$BENCH_AT_EXIT" || true
  [ -z "$BENCH_STOP" ] || as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null
}
bench_at_exit() { BENCH_AT_EXIT+="$1"$'\n'; trap bench_exit EXIT; }

# build and install taskflow, initdb a fresh cluster in $DIR with the settings
# read from stdin (plus port and a Unix socket in $DIR only), start it, and
# stop it when the script exits (unless KEEP is set)
bench_cluster_start() {
  scripts/build >/dev/null
  [ -f "$DIR/data/postmaster.pid" ] && as_pg "$BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$DIR"; mkdir -p "$DIR"; chown postgres: "$DIR"
  as_pg "$BIN/initdb" -D "$DIR/data" -A trust -U postgres >/dev/null
  { cat; printf '%s\n' "port = $PORT" "listen_addresses = ''" "unix_socket_directories = '$DIR'"; } \
      >> "$DIR/data/postgresql.conf"
  as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w start >/dev/null
  [ -n "${KEEP:-}" ] || BENCH_STOP=1
  trap bench_exit EXIT
}
