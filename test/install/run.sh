#!/usr/bin/env bash
# Installs the build into a temporary prefix, builds the out-of-tree consumer with
# find_package(cartesia_asio) and with pkg-config, and mints a token with each from
# the local test server.
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

# The same consumer built with pkg-config instead of CMake.
pc_dir=$(dirname "$(find "$work/prefix" -name cartesia_asio.pc)")
# shellcheck disable=SC2046 # word splitting of the flags is wanted
g++ "$source/test/install/consumer/main.cpp" -o "$work/consumer-pc" \
    $(PKG_CONFIG_PATH=$pc_dir pkg-config --cflags --libs cartesia_asio)

start_test_server "$server" "$work"
passed=0 failed=0
for consumer in "$work/consumer/consumer" "$work/consumer-pc"; do
    out=$(CARTESIA_BASE_URL=$TEST_SERVER_URL CARTESIA_CA_FILE=$TEST_SERVER_CA \
          CARTESIA_API_KEY=sk_car_test_0123456789abcdef "$consumer")
    if [[ "$out" =~ ^consumer:\ [A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$ ]]; then
        passed=$((passed + 1))
    else
        echo "install: $(basename "$consumer"): unexpected output: $out"
        failed=$((failed + 1))
    fi
done
echo "install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
