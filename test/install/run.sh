#!/usr/bin/env bash
# Installs the build into a temporary prefix, builds the out-of-tree consumer with
# find_package(cartesia_asio), and mints a token with it from the local test server.
# usage: run.sh BUILD_DIR SOURCE_DIR TEST_SERVER
set -euo pipefail
build=$1 source=$2 server=$3
source "$source/scripts/lib/test-server.sh"
work=$(mktemp -d)
trap 'stop_test_server; rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/prefix" >/dev/null
test -x "$work/prefix/bin/cartesia-token"
test -f "$work/prefix/include/cartesia/version.hpp"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$source/test/install/consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$work/prefix" \
    -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" >/dev/null
cmake --build "$work/consumer" >/dev/null

start_test_server "$server" "$work"
out=$(CARTESIA_BASE_URL=$TEST_SERVER_URL CARTESIA_CA_FILE=$TEST_SERVER_CA \
      CARTESIA_API_KEY=sk_car_test_0123456789abcdef "$work/consumer/consumer")
if [[ "$out" =~ ^consumer:\ [A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$ ]]; then
    echo "install: 1 passed, 0 failed"
else
    echo "install: unexpected output: $out"
    echo "install: 0 passed, 1 failed"
    exit 1
fi
