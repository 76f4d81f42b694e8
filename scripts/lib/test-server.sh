# Sourced by scripts that need the local test server (the demo, some ctest drivers).
#
#   start_test_server EXECUTABLE WORK_DIR   starts it on an ephemeral port; sets
#       TEST_SERVER_PID, TEST_SERVER_URL and TEST_SERVER_CA; fails if it does not
#       report ready within 30 s.
#   stop_test_server                        stops it (SIGTERM) and waits for it.
#
# The server prints base_url=..., ca_file=... and then "ready" on stdout.

start_test_server() {
    local executable=$1 work=$2 line fd
    mkfifo "$work/test-server.out"
    "$executable" --port 0 >"$work/test-server.out" &
    TEST_SERVER_PID=$!
    TEST_SERVER_URL= TEST_SERVER_CA=
    exec {fd}<"$work/test-server.out"
    while IFS= read -r -t 30 line <&"$fd"; do
        case "$line" in
            base_url=*) TEST_SERVER_URL=${line#base_url=} ;;
            ca_file=*) TEST_SERVER_CA=${line#ca_file=} ;;
            ready) break ;;
        esac
    done
    if [ -z "$TEST_SERVER_URL" ] || [ -z "$TEST_SERVER_CA" ]; then
        echo "the test server did not start" >&2
        return 1
    fi
}

stop_test_server() {
    if [ -n "${TEST_SERVER_PID:-}" ]; then
        kill -TERM "$TEST_SERVER_PID" 2>/dev/null || true
        wait "$TEST_SERVER_PID" 2>/dev/null || true
        TEST_SERVER_PID=
    fi
}
