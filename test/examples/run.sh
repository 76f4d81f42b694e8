#!/usr/bin/env bash
# Runs the three examples against the local test server and checks what they print,
# so that they cannot rot.  usage: run.sh TEST_SERVER EXAMPLE_DIR SOURCE_DIR
set -euo pipefail
server=$1 examples=$2
source "$3/scripts/lib/test-server.sh"
work=$(mktemp -d)
trap 'stop_test_server; rm -rf "$work"' EXIT
start_test_server "$server" "$work"
export CARTESIA_BASE_URL=$TEST_SERVER_URL CARTESIA_CA_FILE=$TEST_SERVER_CA
export CARTESIA_API_KEY=sk_car_test_0123456789abcdef

failures=0
expect() {  # expect NAME PATTERN OUTPUT
    if grep -Eq "$2" <<<"$3"; then
        echo "ok: $1"
    else
        echo "FAILED: $1: expected /$2/ in:"; echo "$3"
        failures=$((failures + 1))
    fi
}
jwt='[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$'
out=$("$examples/example_callback"); expect callback "^callback: $jwt" "$out"
expect "callback cancellation" "^callback: second request cancelled$" "$out"
out=$("$examples/example_future"); expect future "^future: $jwt" "$out"
out=$("$examples/example_coroutine"); expect coroutine "^coroutine: $jwt" "$out"

# A wrong key: each example fails with a clear line and a non-zero status.
for name in callback future coroutine; do
    if err=$(CARTESIA_API_KEY=sk_car_wrong_key_000000 "$examples/example_$name" 2>&1 >/dev/null); then
        echo "FAILED: $name succeeded with a wrong key"; failures=$((failures + 1))
    else
        expect "$name with a wrong key" "failed: .*(401|unauthorized)" "$err"
    fi
done
echo "examples: $((6 - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
