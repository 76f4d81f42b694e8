# shellcheck shell=bash
# Sourced by the token server's ctest drivers (test/token_server/run.sh, test/browser/run.sh).
#
#   start_token_server EXECUTABLE WORK_DIR NAME BASE_URL [OPTIONS...]
#       starts the token server on an ephemeral port in front of the API at BASE_URL,
#       with OPTIONS and its stderr in WORK_DIR/NAME.log; sets TOKEN_SERVER_URL and
#       TOKEN_SERVER_PID once it has printed "ready", fails if it has not within 30 s.
#   stop_token_server PID       SIGTERM; returns the server's exit status.
#   stop_token_servers          stops every server started and still running.

token_server_pids=()

start_token_server() {
    local executable=$1 work=$2 name=$3 base_url=$4 line fd
    shift 4
    mkfifo "$work/$name.out"
    CARTESIA_BASE_URL=$base_url "$executable" --port 0 "$@" >"$work/$name.out" 2>"$work/$name.log" &
    TOKEN_SERVER_PID=$!
    token_server_pids+=("$TOKEN_SERVER_PID")
    TOKEN_SERVER_URL=
    exec {fd}<"$work/$name.out"
    while IFS= read -r -t 30 line <&"$fd"; do
        case "$line" in
            "listening on "*) TOKEN_SERVER_URL=${line#listening on } ;;
            ready) break ;;
        esac
    done
    if [ -z "$TOKEN_SERVER_URL" ]; then
        echo "the token server '$name' did not start:" >&2
        cat "$work/$name.log" >&2
        return 1
    fi
}

stop_token_server() {
    local pid=$1 status=0
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || status=$?
    return "$status"
}

stop_token_servers() {
    local pid
    for pid in "${token_server_pids[@]}"; do
        if kill -TERM "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null || true
        fi
    done
    token_server_pids=()
}
