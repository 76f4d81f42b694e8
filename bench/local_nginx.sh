# shellcheck shell=bash disable=SC2034  # local_nginx_url(s) and local_nginx_pid are for the caller
# Sourced by bench/soak and bench/distance: the local server of bench/compare's set-up, in
# two functions.
#
#   local_nginx_start DIR KEEPALIVE_REQUESTS [DIRECTIVES...]
#       writes a throw-away CA (DIR/ca.pem) and a certificate for localhost and
#       127.0.0.1, starts nginx (one worker, pinned to core 0) on a free port of
#       127.0.0.1 that answers POST /access-token with a token, as the API does, and
#       closes each connection after KEEPALIVE_REQUESTS requests; waits until it
#       listens. Sets local_nginx_url and local_nginx_pid. Each DIRECTIVES argument
#       adds one more such server, on a port of its own, with those directives too
#       (e.g. 'keepalive_timeout 2s;'); local_nginx_urls holds every server's URL, the
#       first one's (local_nginx_url) first.
#   local_nginx_stop
#       stops it (gracefully) and waits for it.
local_nginx_pid=
local_nginx_url=
local_nginx_urls=()

local_nginx_start() {
    local dir=$1 keepalive_requests=$2 port ports=() directives servers=
    shift 2
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=bench CA" \
        -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
        -keyout "$dir/leaf.key" -out "$dir/leaf.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$dir/ext.cnf"
    openssl x509 -req -in "$dir/leaf.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
        -extfile "$dir/ext.cnf" -out "$dir/leaf.pem" 2>/dev/null
    local token='eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJncmFudHMiOnsidHRzIjp0cnVlfSwiZXhwIjo0MTAyNDQ0ODAwfQ.c2lnbmF0dXJlLW5vdC1jaGVja2Vk'
    for directives in '' "$@"; do
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        ports+=("$port")
        servers+="
    server {
        listen 127.0.0.1:$port ssl;
        keepalive_requests $keepalive_requests;
        $directives
        location = /access-token { default_type application/json; return 200 '{\"token\":\"$token\"}'; }
    }"
    done
    mkdir -p "$dir/nginx/logs"
    cat >"$dir/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
error_log $dir/nginx/logs/error.log warn;
pid $dir/nginx/nginx.pid;
events { worker_connections 20000; }
http {
    access_log off;
    ssl_certificate $dir/leaf.pem;
    ssl_certificate_key $dir/leaf.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:bench:10m;
    ssl_session_tickets on;
    client_body_temp_path $dir/nginx/body;$servers
}
CONF
    taskset -c 0 nginx -p "$dir/nginx" -c "$dir/nginx.conf" &
    local_nginx_pid=$!
    for _ in $(seq 50); do
        if (echo >"/dev/tcp/127.0.0.1/${ports[-1]}") 2>/dev/null; then break; fi
        sleep 0.1 # waiting for a server process to listen, not synchronising a test
    done
    local_nginx_urls=()
    for port in "${ports[@]}"; do local_nginx_urls+=("https://127.0.0.1:$port"); done
    local_nginx_url=${local_nginx_urls[0]}
}

local_nginx_stop() {
    if [ -n "$local_nginx_pid" ]; then
        kill -QUIT "$local_nginx_pid" 2>/dev/null || true
        wait "$local_nginx_pid" 2>/dev/null || true
        local_nginx_pid=
    fi
}
