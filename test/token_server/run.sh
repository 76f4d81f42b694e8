#!/usr/bin/env bash
# The token server example, end to end over HTTP with curl, in front of the local
# Cartesia test server: endpoints, authentication, policy, rate limit, CORS, the
# mapping of upstream failures, /metrics (checked with promtool) and /healthz, the
# JSON access log, what never leaks, and graceful shutdown.
#   usage: run.sh TEST_SERVER TOKEN_SERVER SOURCE_DIR
set -euo pipefail
test_server=$1 token_server=$2
source "$3/scripts/lib/test-server.sh"
source "$3/test/token_server/lib.sh"
work=$(mktemp -d)
trap 'stop_token_servers; stop_test_server; rm -rf "$work"' EXIT
start_test_server "$test_server" "$work"

api_key=sk_car_test_0123456789abcdef
secret=session-secret-for-tests
export CARTESIA_API_KEY=$api_key CARTESIA_CA_FILE=$TEST_SERVER_CA TOKEN_SERVER_SESSION_SECRET=$secret
auth="Authorization: Bearer $secret"

passed=0 failed=0
pass() { echo "ok: $1"; passed=$((passed + 1)); }
fail() { echo "FAILED: $1"; failed=$((failed + 1)); }

# fetch CURL_ARGS...: one request; sets status, headers (lower-cased names, no CR) and body.
fetch() {
    status=$(curl -sS --max-time 10 -D "$work/headers" -o "$work/body" -w '%{http_code}' "$@") || status=000
    headers=$(tr -d '\r' <"$work/headers" | sed 's/^[^:]*:/\L&/')
    body=$(<"$work/body")
}
expect_status() { # NAME CODE
    if [ "$status" = "$2" ]; then pass "$1"; else fail "$1: status $status, expected $2; body: $body"; fi
}
expect_match() { # NAME PATTERN TEXT
    if grep -Eq -- "$2" <<<"$3"; then pass "$1"; else fail "$1: expected /$2/ in: $3"; fi
}
expect_no_match() { # NAME PATTERN TEXT
    if grep -Eq -- "$2" <<<"$3"; then fail "$1: unexpected /$2/ in: $3"; else pass "$1"; fi
}
json_field() { # NAME JSON: the value of a string or number member, quotes removed
    sed -nE "s/.*\"$1\":\"?([^\",}]*).*/\1/p" <<<"$2"
}
jwt_claims() { # TOKEN: the JWT's payload, base64url-decoded
    local payload
    payload=$(cut -d. -f2 <<<"$1" | tr '_-' '/+')
    while [ $((${#payload} % 4)) -ne 0 ]; do payload+='='; done
    base64 -d <<<"$payload"
}
jwt='^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$'

# scrape NAME URL: GET URL/metrics into $metrics (also kept in $work/scraped, for the
# leak check at the end), which promtool must pass without a word: its lint findings
# are failures too.
scrape() {
    local problems
    fetch "$2/metrics"
    expect_status "$1: /metrics" 200
    expect_match "$1: /metrics is the text format 0.0.4" '^content-type: text/plain; version=0\.0\.4; charset=utf-8$' "$headers"
    metrics=$body
    printf '%s\n' "$metrics" >>"$work/scraped"
    if problems=$(promtool check metrics <<<"$metrics" 2>&1) && [ -z "$problems" ]; then
        pass "$1: promtool check metrics"
    else
        fail "$1: promtool check metrics: $problems"
    fi
}
metric() { # SERIES: the value of the sample named SERIES exactly, labels included
    awk -v series="$1" '$1 == series { print $2 }' <<<"$metrics"
}
expect_metric() { # NAME SERIES VALUE
    local value
    value=$(metric "$2")
    if [ "$value" = "$3" ]; then pass "$1"; else fail "$1: $2 is '$value', expected $3"; fi
}
family_sum() { # FAMILY: the sum of its samples
    awk -v family="$1" 'index($1, family "{") == 1 || $1 == family { sum += $2 } END { print sum + 0 }' <<<"$metrics"
}
# check_access_log NAME LOG: every line of LOG is a JSON object with the access log's
# fields, of the right types; a POST /api/token that reached the upstream says how it went.
check_access_log() {
    local problems
    if problems=$(python3 - "$2" 2>&1 <<'PY'
import json, re, sys
fields = {"time": str, "method": str, "path": str, "status": int, "duration_ms": (int, float),
          "bytes_sent": int, "remote_address": str}
with open(sys.argv[1], encoding="utf-8") as log:
    lines = log.read().splitlines()
if not lines:
    sys.exit("no line")
for number, text in enumerate(lines, 1):
    try:
        line = json.loads(text)
    except ValueError as e:
        sys.exit(f"line {number} is not JSON ({e}): {text}")
    for name, kind in fields.items():
        if not isinstance(line.get(name), kind):
            sys.exit(f"line {number}: no {name} of type {kind}: {text}")
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"]):
        sys.exit(f"line {number}: time is not RFC 3339 UTC: {text}")
    if "?" in line["path"] or line["duration_ms"] < 0 or line["remote_address"] != "127.0.0.1":
        sys.exit(f"line {number}: a query string, a negative duration or another address: {text}")
    if "upstream" in line:
        source = line.get("token_source")
        if line["path"] != "/api/token" or source not in ("minted", "reserve"):
            sys.exit(f"line {number}: an upstream outcome without its token source: {text}")
        # A take from the reserve makes no attempt of its own; a mint that succeeded made one.
        attempts = line.get("attempts")
        if not isinstance(attempts, int) or (source == "reserve" and attempts != 0) or \
                (source == "minted" and line["upstream"] == "ok" and attempts < 1):
            sys.exit(f"line {number}: attempts that do not match the token source: {text}")
        if (line["upstream"] == "ok") != (line["status"] == 200):
            sys.exit(f"line {number}: the upstream outcome does not match the status: {text}")
    elif line["path"] == "/api/token" and line["status"] in (200, 502, 503, 504):
        sys.exit(f"line {number}: no upstream outcome: {text}")
PY
    ); then
        pass "$1: the access log is JSON with its fields"
    else
        fail "$1: access log: $problems"
    fi
}

# --- the endpoints, against a server that allows tts and stt for up to 600 s ---
start_token_server "$token_server" "$work" main "$TEST_SERVER_URL" \
    --grant tts --grant stt --expires-in 600 --burst 1000 --allow-origin http://app.example
main=$TOKEN_SERVER_URL main_pid=$TOKEN_SERVER_PID

fetch "$main/healthz"
expect_status "healthz" 200
expect_match "healthz body" '^\{"status":"ok"\}$' "$body"
printf '%s\n' "$body" >>"$work/scraped"
fetch "$main/healthz?secret=$secret"
expect_status "healthz with a query string" 200
fetch -X POST "$main/metrics"
expect_status "POST /metrics" 405

fetch "$main/"
expect_status "the page" 200
expect_match "the page is HTML" '^content-type: text/html' "$headers"
expect_match "the page has its button" 'id="get-token"' "$body"
fetch "$main/app.js"
expect_match "its script" '^content-type: text/javascript' "$headers"
fetch --path-as-is "$main/../CMakeLists.txt"
expect_status "no path out of the web root" 404
fetch "$main/missing.html"
expect_status "a missing file" 404

fetch -X POST -H "$auth" "$main/api/token"
expect_status "a token" 200
token=$(json_field token "$body")
expect_match "the token is a JWT" "$jwt" "$token"
expect_match "expires_in defaults to the policy's" '"expires_in":600' "$body"
expect_match "tokens are not cached" '^cache-control: no-store' "$headers"
claims=$(jwt_claims "$token")
expect_match "the policy's grants by default" '"tts":true.*"stt":true|"stt":true.*"tts":true' "$claims"

fetch -X POST -H "$auth" -H 'Content-Type: application/json' \
    -d '{"grants":["tts"],"expires_in":60}' "$main/api/token"
expect_status "a narrower token" 200
expect_match "with the lifetime asked for" '"expires_in":60' "$body"
claims=$(jwt_claims "$(json_field token "$body")")
expect_match "upstream was asked for tts" '"tts":true' "$claims"
expect_no_match "and not for stt" '"stt":true' "$claims"
lifetime=$(($(json_field exp "$claims") - $(json_field iat "$claims")))
expect_match "upstream was asked for 60 s" '^60$' "$lifetime"

fetch -X POST "$main/api/token"
expect_status "no secret" 401
expect_match "no secret: WWW-Authenticate" '^www-authenticate: Bearer' "$headers"
fetch -X POST -H 'Authorization: Bearer wrong' "$main/api/token"
expect_status "a wrong secret" 401
fetch -X POST -H "$auth" -d '{"grants":["agent"]}' "$main/api/token"
expect_status "a grant outside the policy" 403
fetch -X POST -H "$auth" -d '{"expires_in":900}' "$main/api/token"
expect_status "a lifetime beyond the policy" 403
for bad in 'not json' '{"grants":"tts"}' '{"grants":["voice"]}' '{"expires_in":0}' '{"expires_in":"60"}' '{"scope":1}'; do
    fetch -X POST -H "$auth" -d "$bad" "$main/api/token"
    expect_status "a malformed body: $bad" 400
done
fetch -X POST -H "$auth" -H 'Expect:' -d "$(printf '%5000s' '')" "$main/api/token"
expect_status "a body over 4 KiB" 413
fetch -H "X-Filler: $(printf '%9000s' '' | tr ' ' x)" "$main/healthz"
expect_status "headers over 8 KiB" 431
fetch "$main/api/token"
expect_status "GET /api/token" 405

# --- the metrics: N requests, N counted; no secret needed ---
start_token_server "$token_server" "$work" counted "$TEST_SERVER_URL"
counted=$TOKEN_SERVER_URL
for attempt in 1 2 3; do
    fetch -X POST -H "$auth" "$counted/api/token"
    expect_status "counted token ($attempt)" 200
done
fetch "$counted/healthz"
scrape "after 3 tokens" "$counted"
expect_metric "3 token requests counted" 'token_server_requests_total{route="/api/token",status="200"}' 3
expect_metric "1 health check counted" 'token_server_requests_total{route="/healthz",status="200"}' 1
expect_metric "the scrape does not count itself" 'token_server_requests_total{route="/metrics",status="200"}' ''
expect_metric "3 token request durations" 'token_server_request_duration_seconds_count{route="/api/token"}' 3
expect_metric "all within +Inf" 'token_server_request_duration_seconds_bucket{route="/api/token",le="+Inf"}' 3
expect_metric "no 429 yet" 'token_server_rate_limited_total' 0
expect_metric "no upstream failure" 'token_server_upstream_failures_total{kind="network"}' 0
expect_metric "the client minted 3" 'cartesia_client_tokens_minted_total' 3
expect_metric "the client's latency is over 3" 'cartesia_client_latency_observations_total' 3
expect_match "the client failed none" '^0$' "$(family_sum cartesia_client_failures_total)"
expect_metric "no request queued" 'cartesia_client_requests_queued' 0
expect_match "a latency median" '^[0-9.e+-]+$' "$(metric 'cartesia_client_latency_quantile_seconds{q="0.5"}')"
expect_no_match "a latency median above 0" '^0$' "$(metric 'cartesia_client_latency_quantile_seconds{q="0.5"}')"
opened=$(metric cartesia_client_connections_opened_total)
expect_match "the client opened a connection" '^[1-9][0-9]*$' "$opened"
expect_match "each opened with one handshake" "^$opened\$" "$(family_sum cartesia_client_handshakes_total)"
fetch "$counted/missing.html"
scrape "a second scrape" "$counted"
expect_metric "the first scrape counted by the second" 'token_server_requests_total{route="/metrics",status="200"}' 1
expect_metric "other paths under one route" 'token_server_requests_total{route="static",status="404"}' 1
if stop_token_server "$TOKEN_SERVER_PID"; then status=0; else status=$?; fi
expect_match "counted: exit status 0" '^0$' "$status"
check_access_log counted "$work/counted.log"
expect_match "one access log line per request" '^7$' "$(wc -l <"$work/counted.log")"

# --- --reserve: the default order comes from tokens minted ahead, each handed out once ---
start_token_server "$token_server" "$work" reserved "$TEST_SERVER_URL" --reserve 3
reserved=$TOKEN_SERVER_URL
tokens=()
for attempt in 1 2 3 4 5; do
    fetch -X POST -H "$auth" "$reserved/api/token"
    expect_status "reserved token ($attempt)" 200
    tokens+=("$(json_field token "$body")")
    # Minted ahead: what is left of its 600 s, not more.
    expect_match "reserved token ($attempt): its expires_in is what is left" '^(5[4-9][0-9]|600)$' \
        "$(json_field expires_in "$body")"
done
expect_match "each reserved token is handed out once" '^5$' "$(printf '%s\n' "${tokens[@]}" | sort -u | wc -l)"
fetch -X POST -H "$auth" -H 'Content-Type: application/json' -d '{"expires_in":60}' "$reserved/api/token"
expect_status "another order is minted when asked for" 200
scrape "with a reserve" "$reserved"
expect_match "the reserve's ready tokens are a gauge" '^[0-3]$' "$(metric token_server_reserve_ready)"
expect_match "the reserve minted ahead: at least 6 tokens" '^([6-9]|[1-9][0-9]+)$' \
    "$(metric cartesia_client_tokens_minted_total)"
if stop_token_server "$TOKEN_SERVER_PID"; then status=0; else status=$?; fi
expect_match "reserved: exit status 0" '^0$' "$status"
# Once it has exited, every line is written.
check_access_log reserved "$work/reserved.log"
expect_match "the five default orders were taken from the reserve" '^5$' \
    "$(grep -c '"path":"/api/token","status":200,.*"attempts":0,"token_source":"reserve"' "$work/reserved.log")"
expect_match "the other order was minted for its request" '^1$' \
    "$(grep -c '"path":"/api/token","status":200,.*"attempts":1,"token_source":"minted"' "$work/reserved.log")"

start_token_server "$token_server" "$work" quiet "$TEST_SERVER_URL" --no-access-log
fetch -X POST -H "$auth" "$TOKEN_SERVER_URL/api/token"
expect_status "--no-access-log: still serves" 200
stop_token_server "$TOKEN_SERVER_PID" || true
expect_match "--no-access-log: nothing on stderr" '^0$' "$(wc -c <"$work/quiet.log")"

# --- CORS ---
preflight=(-X OPTIONS -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: authorization')
fetch "${preflight[@]}" -H 'Origin: http://app.example' "$main/api/token"
expect_status "preflight from an allowed origin" 204
expect_match "it names the origin" '^access-control-allow-origin: http://app.example$' "$headers"
expect_match "it varies by origin" '^vary: Origin$' "$headers"
expect_match "it allows POST" '^access-control-allow-methods: .*POST' "$headers"
expect_match "it allows Authorization" '^access-control-allow-headers: .*Authorization' "$headers"
fetch "${preflight[@]}" -H 'Origin: http://evil.example' "$main/api/token"
expect_no_match "preflight from another origin: no CORS headers" '^access-control-' "$headers"
fetch -X POST -H "$auth" -H 'Origin: http://app.example' "$main/api/token"
expect_match "a POST from an allowed origin" '^access-control-allow-origin: http://app.example$' "$headers"
expect_match "its page may read Retry-After" '^access-control-expose-headers: Retry-After$' "$headers"
fetch -X POST -H "$auth" -H 'Origin: http://evil.example' "$main/api/token"
expect_no_match "a POST from another origin: no CORS headers" '^access-control-' "$headers"

# --- the rate limit: a burst of 3, then one request per 10 s ---
start_token_server "$token_server" "$work" limited "$TEST_SERVER_URL" --rate 0.1 --burst 3
for attempt in 1 2 3; do
    fetch -X POST -H "$auth" "$TOKEN_SERVER_URL/api/token"
    expect_status "within the burst ($attempt)" 200
done
fetch -X POST -H "$auth" "$TOKEN_SERVER_URL/api/token"
expect_status "beyond the burst" 429
retry_after=$(sed -n 's/^retry-after: //p' <<<"$headers")
expect_match "Retry-After in whole seconds, at most 10" '^([1-9]|10)$' "$retry_after"
expect_match "a JSON error" '^\{"error":"[^"]+"\}$' "$body"
scrape "rate limited" "$TOKEN_SERVER_URL"
expect_metric "the 429 counted as rate limited" 'token_server_rate_limited_total' 1
expect_metric "the 429 counted by status" 'token_server_requests_total{route="/api/token",status="429"}' 1

# --- upstream failures: a short fixed text per class, the request id, nothing else ---
upstream_failure() { # NAME BASE_URL EXPECTED_STATUS KIND CLIENT_KIND [OPTIONS...]
    local name=$1 base_url=$2 expected=$3 kind=$4 client_kind=$5 answer
    shift 5
    start_token_server "$token_server" "$work" "$name" "$base_url" --upstream-max-retries 0 "$@"
    fetch -X POST -H "$auth" "$TOKEN_SERVER_URL/api/token"
    expect_status "upstream $name" "$expected"
    expect_match "upstream $name: a JSON error" '^\{"error":"[a-zA-Z ]+"(,"request_id":"[0-9a-f-]+")?\}$' "$body"
    expect_no_match "upstream $name: no key, no upstream text" "$api_key|sk_car|Fault injected|test server" "$body"
    answer=$body
    scrape "upstream $name" "$TOKEN_SERVER_URL"
    expect_metric "upstream $name: counted as $kind" "token_server_upstream_failures_total{kind=\"$kind\"}" 1
    expect_match "upstream $name: counted once" '^1$' "$(family_sum token_server_upstream_failures_total)"
    expect_match "upstream $name: one failure for the client" '^1$' "$(family_sum cartesia_client_failures_total)"
    expect_metric "upstream $name: the client's kind" "cartesia_client_failures_total{kind=\"$client_kind\"}" 1
    body=$answer
}
upstream_failure unauthorized "$TEST_SERVER_URL/fault/status-401" 502 http_4xx http
expect_match "the upstream request id is passed on" '"request_id":"[0-9a-f-]{36}"' "$body"
upstream_failure unavailable "$TEST_SERVER_URL/fault/always-503" 503 http_5xx http
upstream_failure rate-limited "$TEST_SERVER_URL/fault/status-429" 503 rate_limited http
upstream_failure garbage "$TEST_SERVER_URL/fault/garbage" 502 other other
upstream_failure hang "$TEST_SERVER_URL/fault/hang" 504 timeout timeout --upstream-timeout-ms 300
upstream_failure refused "https://127.0.0.1:1" 503 network network
CARTESIA_CA_FILE='' upstream_failure untrusted "$TEST_SERVER_URL" 502 tls network

if CARTESIA_API_KEY='' "$token_server" --port 0 >/dev/null 2>"$work/no-key.log"; then status=0; else status=$?; fi
expect_match "no API key: exit status 2" '^2$' "$status"
expect_match "no API key: says so" 'CARTESIA_API_KEY' "$(<"$work/no-key.log")"

# --- graceful shutdown: a request in progress is answered, an idle connection closed,
# and /healthz says 503 from then on ---
start_token_server "$token_server" "$work" draining "$TEST_SERVER_URL/fault/slow-500"
port=${TOKEN_SERVER_URL##*:}
read_response() { # FD: the status line and the body of one HTTP response
    local fd=$1 line length=0
    IFS= read -r -t 10 line <&"$fd" || return 1
    echo "${line%$'\r'}"
    while IFS= read -r -t 10 line <&"$fd" && [ -n "${line%$'\r'}" ]; do
        case "${line,,}" in content-length:*) length=${line#*:} length=${length//[^0-9]/} ;; esac
    done
    if [ "$length" -gt 0 ]; then IFS= read -r -N "$length" -t 10 line <&"$fd" && echo "$line"; fi
}
exec {idle}<>"/dev/tcp/127.0.0.1/$port" {busy}<>"/dev/tcp/127.0.0.1/$port" {probe}<>"/dev/tcp/127.0.0.1/$port"
for fd in "$idle" "$busy" "$probe"; do # accepted and served once, so all are known to the server
    printf 'GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n' >&"$fd"
    read_response "$fd" >/dev/null
done
printf 'POST /api/token HTTP/1.1\r\nHost: t\r\n%s\r\nContent-Length: 0\r\n\r\n' "$auth" >&"$busy"
# A request begun before the signal (it is in the server's socket once printf returns):
# its connection is not idle, so it is answered, once complete.
printf 'GET /healthz HTTP/1.1\r\nHost: t\r\n' >&"$probe"
kill -TERM "$TOKEN_SERVER_PID"
expect_match "SIGTERM: the request in progress is answered" '^HTTP/1.1 200.*' "$(read_response "$busy" | tr '\n' ' ')"
if IFS= read -r -t 3 line <&"$idle"; then result=data; else result=$?; fi
expect_match "SIGTERM: the idle connection is closed" '^1$' "$result"
# The idle connection's end says that the shutdown has begun: now end the probe's request.
printf '\r\n' >&"$probe"
expect_match "SIGTERM: /healthz says 503" '^HTTP/1.1 503 .*shutting down' "$(read_response "$probe" | tr '\n' ' ')"
if wait "$TOKEN_SERVER_PID"; then status=0; else status=$?; fi
expect_match "SIGTERM: exit status 0" '^0$' "$status"

if stop_token_server "$main_pid"; then status=0; else status=$?; fi
expect_match "SIGTERM after serving: exit status 0" '^0$' "$status"

# --- the logs: one JSON line per request, no key, no secret, no token ---
for log in main limited unauthorized hang refused untrusted draining; do
    check_access_log "$log" "$work/$log.log"
done
expect_match "a token request is logged" '"method":"POST","path":"/api/token","status":200,.*"upstream":"ok","attempts":1,"token_source":"minted"' "$(<"$work/main.log")"
expect_match "the path without the query string" '"path":"/healthz","status":200' "$(<"$work/main.log")"
expect_match "upstream failures are logged" '"upstream":"unauthorized","attempts":1,"token_source":"minted","upstream_kind":"http_4xx","upstream_detail":"HTTP 401' "$(<"$work/unauthorized.log")"
expect_match "the shutdown's 503 is logged" '"path":"/healthz","status":503' "$(<"$work/draining.log")"
logs=$(cat "$work"/*.log)
expect_no_match "the logs hold no key, secret or token" "$api_key|$secret|eyJ" "$logs"
expect_no_match "/metrics and /healthz hold no key, secret or token" "$api_key|$secret|eyJ|\"token\":" "$(<"$work/scraped")"

echo "token_server: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
