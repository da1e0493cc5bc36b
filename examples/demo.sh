#!/usr/bin/env bash
# mxroute demo: start Knot on 127.0.0.1 with examples/zones/ and ask the
# CLI where mail for a handful of example domains goes. Nothing leaves the
# machine. Run it as `make demo` (which builds first) or directly.

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

# shellcheck source=spec/support/knot.sh
. spec/support/knot.sh
trap knot_stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

knot_serve examples/zones || exit 1
NS="127.0.0.1:$KNOT_PORT"
echo "Knot DNS serves examples/zones/ on $NS (pid $KNOT_PID)."

if [[ -f bin/mxroute ]]; then
	if [[ -x bin/mxroute ]]; then MXROUTE=(bin/mxroute); else MXROUTE=(lua5.4 bin/mxroute); fi
else
	MXROUTE=()
	echo
	echo "bin/mxroute does not exist yet: resolution through mxroute is not"
	echo "available. Below is only what the zones answer (kdig), not a plan."
fi

# show EXPLANATION [--self NAME] ADDRESS
show() {
	local why=$1 status
	shift
	echo
	echo "== $why"
	if ((${#MXROUTE[@]})); then
		echo "\$ mxroute --nameserver $NS $*"
		"${MXROUTE[@]}" --nameserver "$NS" "$@"
		status=$?
		echo "(exit status $status)"
	else
		local domain=${*: -1}
		domain=${domain##*@}
		echo "\$ kdig @127.0.0.1 -p $KNOT_PORT $domain MX"
		kdig @127.0.0.1 -p "$KNOT_PORT" +time=1 +retry=0 +noall +header +answer "$domain" MX \
			| sed -n -e 's/^;; ->>HEADER<<- .*\(status: [A-Z]*\).*/\1/p' -e '/	IN	/p'
	fi
}

show "MX ordering: example.test has a primary (pref 10, two IPv4 and two IPv6 addresses) and a backup (pref 20)" \
	postmaster@example.test
show "Equal preference: bigmail.test has three hosts at pref 5, tried in random order, then a fallback at 50" \
	--seed 1 bigmail.test
show "Backup MX: partner.test lists its own host at 10 and our relay.example.test at 20" \
	partner.test
show "Self-exclusion: we are relay.example.test, so only the hosts better than us remain" \
	--self relay.example.test partner.test
show "Loop: we are mx1.example.test, the best MX of example.test: nowhere to send to" \
	--self mx1.example.test example.test
show "Implicit MX: smallshop.test has no MX, so mail goes to its own address (pref 0)" \
	info@smallshop.test
show "Null MX: nomail.test says 'MX 0 .' - it accepts no mail, its A record is not used" \
	someone@nomail.test
show "Dangling MX host: oldcorp.test's primary mail.oldcorp.test no longer exists; the backup is used" \
	oldcorp.test
show "NXDOMAIN: nosuch.example.test does not exist" \
	user@nosuch.example.test

if ((${#MXROUTE[@]})); then
	echo
	echo "== Routing policies: examples/routes/transport, a Postfix transport(5) table"
	show "Routed recipient: partner.test goes to its submission relay [submit.partner.test] on port 587, no MX lookup" \
		--routes examples/routes/transport user@partner.test
	show "Relay with a port: bigmail.test through example.test's MX on port 2525, then [relay.example.test]" \
		--routes examples/routes/transport postmaster@bigmail.test
	show "Retired domain: oldcorp.test bounces with the route's text and enhanced status code" \
		--routes examples/routes/transport user@oldcorp.test
	show "Paused domain: smallshop.test is deferred (retry:), mail stays queued" \
		--routes examples/routes/transport info@smallshop.test
	echo
	echo "== The same table in a Lua policy: a sender rule, a fallback relay, a source address per target"
	echo "\$ lua examples/routes/policy.lua $NS"
	LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./build/lua5.4/?.so;;' \
		lua5.4 examples/routes/policy.lua "$NS"
fi

if ((${#MXROUTE[@]})) && [[ -x /usr/sbin/nginx ]]; then
	echo
	echo "== The same from inside nginx: examples/nginx/nginx.conf (mxroute.ngx on cosockets)"
	LUA_PATH='./lua/?.lua;./lua/?/init.lua;./spec/?.lua;;' LUA_CPATH='./build/lua5.4/?.so;;' \
		lua5.4 examples/nginx/demo.lua "$NS" postmaster@example.test someone@nomail.test 'bad@@input'
fi
exit 0
