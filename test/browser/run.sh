#!/usr/bin/env bash
# The token server's page in headless Chromium (e2e.mjs), in front of the local test
# server. Installs playwright-core into test/browser/node_modules when it is missing
# or older than package-lock.json; it never downloads a browser.
#   usage: run.sh TEST_SERVER TOKEN_SERVER SOURCE_DIR ARTIFACT_DIR
set -euo pipefail
test_server=$1 token_server=$2 artifacts=$4
here=$3/test/browser

for tool in node npm /usr/bin/chromium; do
    if ! command -v "$tool" >/dev/null; then
        echo "browser_e2e: skipped, $tool is missing (scripts/setup test installs it)"
        exit 77 # ctest's SKIP_RETURN_CODE
    fi
done
if [ ! -f "$here/node_modules/.package-lock.json" ] ||
    [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
    (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi

source "$3/scripts/lib/test-server.sh"
source "$3/test/token_server/lib.sh"
work=$(mktemp -d)
trap 'stop_token_servers; stop_test_server; rm -rf "$work"' EXIT
start_test_server "$test_server" "$work"

secret=browser-session-secret
export CARTESIA_API_KEY=sk_car_test_0123456789abcdef CARTESIA_CA_FILE=$TEST_SERVER_CA
export TOKEN_SERVER_SESSION_SECRET=$secret
start_token_server "$token_server" "$work" page "$TEST_SERVER_URL"

mkdir -p "$artifacts"
node "$here/e2e.mjs" "$TOKEN_SERVER_URL" "$secret" "$artifacts/token_server.png"
