#!/usr/bin/env bash
# cartesia-asio as a subproject: configures test/subproject both ways (add_subdirectory
# and FetchContent), builds the add_subdirectory one (FetchContent_MakeAvailable is
# add_subdirectory underneath: configuring it is the part that can differ) and mints a
# token with its consumer from the local test server.
# usage: run.sh SOURCE_DIR TEST_SERVER
set -euo pipefail
src_dir=$1 server=$2
source "$src_dir/scripts/lib/test-server.sh"
work=$(mktemp -d)
trap 'stop_test_server; rm -rf "$work"' EXIT

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
passed=0 failed=0
check() {  # name command...
    local name=$1; shift
    if "$@" >"$work/$name.log" 2>&1; then
        passed=$((passed + 1))
    else
        echo "subproject: $name failed:"; tail -20 "$work/$name.log"
        failed=$((failed + 1))
    fi
}
for how in add_subdirectory FetchContent; do
    check "configure-$how" cmake -S "$src_dir/test/subproject" -B "$work/$how" "${generator[@]}" \
        -DCMAKE_BUILD_TYPE=Release -DHOW="$how" -DCARTESIA_SOURCE_DIR="$src_dir" "${launcher[@]}"
done
if [ "$failed" -ne 0 ]; then
    echo "subproject: $passed passed, $failed failed"
    exit 1
fi
check build cmake --build "$work/add_subdirectory" -j "${JOBS:-2}" --target consumer

start_test_server "$server" "$work"
out=$(CARTESIA_BASE_URL=$TEST_SERVER_URL CARTESIA_CA_FILE=$TEST_SERVER_CA \
      CARTESIA_API_KEY=sk_car_test_0123456789abcdef "$work/add_subdirectory/consumer" 2>&1 || true)
if [[ "$out" =~ ^consumer:\ [A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$ ]]; then
    passed=$((passed + 1))
else
    echo "subproject: unexpected consumer output: $out"
    failed=$((failed + 1))
fi
echo "subproject: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
