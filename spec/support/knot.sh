# shellcheck shell=bash
# Shell helpers around spec/support/knot.lua, for bash scripts that need a
# Knot server for as long as they run (spec/support/run-tests,
# examples/demo.sh). Source this file, then:
#
#   knot_serve ZONEDIR    start knotd on 127.0.0.1 at a free port serving
#                         ZONEDIR/*.zone; sets KNOT_PORT, KNOT_PID (knotd)
#                         and KNOT_KEEPER (the Lua process that owns knotd
#                         and stops it on SIGTERM/SIGINT/SIGHUP); returns
#                         non-zero, with knotd's log on stderr, on failure
#   knot_stop             stop it and wait until it is gone
#
# The keeper is a child of the calling shell, and knotd a child of the
# keeper, so both are reaped and nothing is left behind, not even a zombie.
# When MXR_TEST_TMP is set, the keeper's pid is recorded in
# $MXR_TEST_TMP/pids/ (knot.lua records knotd's) and temporary files live
# there. The Lua interpreter is $KNOT_LUA (default lua5.4).

KNOT_LUA=${KNOT_LUA:-lua5.4}
KNOT_SH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KNOT_PORT= KNOT_PID= KNOT_KEEPER=

knot_serve() {
	local zones=$1 out
	out=$(mktemp "${MXR_TEST_TMP:-${TMPDIR:-/tmp}}/knot-serve.XXXXXX") || return 1
	"$KNOT_LUA" "$KNOT_SH_DIR/knot.lua" serve "$zones" >"$out" &
	KNOT_KEEPER=$!
	if [ -n "${MXR_TEST_TMP:-}" ]; then
		mkdir -p "$MXR_TEST_TMP/pids"
		echo "$KNOT_KEEPER" >"$MXR_TEST_TMP/pids/knot-keeper-$KNOT_KEEPER.pid"
	fi
	# knot.lua prints "PORT PID" once every zone answers SOA.
	until read -r KNOT_PORT KNOT_PID <"$out" 2>/dev/null && [ -n "$KNOT_PID" ]; do
		if ! kill -0 "$KNOT_KEEPER" 2>/dev/null; then
			wait "$KNOT_KEEPER" 2>/dev/null
			rm -f "$out"
			echo "knot.sh: knotd did not start (see above)" >&2
			KNOT_KEEPER=
			return 1
		fi
		sleep 0.02
	done
	rm -f "$out"
}

knot_stop() {
	[ -n "$KNOT_KEEPER" ] || return 0
	kill -TERM "$KNOT_KEEPER" 2>/dev/null
	wait "$KNOT_KEEPER" 2>/dev/null
	if [ -n "${MXR_TEST_TMP:-}" ]; then
		rm -f "$MXR_TEST_TMP/pids/knot-keeper-$KNOT_KEEPER.pid"
	fi
	KNOT_KEEPER=
}
