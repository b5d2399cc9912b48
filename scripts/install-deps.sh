#!/bin/sh
# Installs the Debian packages presenced needs to build, run and test, and
# only those that are missing, so repeated runs cost nothing. Debian 12, root.
set -eu

BUILD="gcc make pkg-config libuv1-dev libhttp-parser-dev libwslay-dev \
libsqlite3-dev libsodium-dev libjansson-dev libssl-dev uthash-dev libpq-dev \
libhiredis-dev libicu-dev"
TEST="libcmocka-dev python3 python3-pytest python3-pytest-xdist python3-websockets python3-requests \
sqlite3 clang libclang-rt-14-dev chromium nginx-light openssl postgresql python3-psycopg2 \
redis-server fonts-noto-color-emoji"

want="$BUILD"
[ "${1:-}" = "--test" ] && want="$BUILD $TEST"

# Node.js with npm, for the browser tests: Debian's own unless a node with
# npm is already there (another build of nodejs ships npm inside, and
# Debian's npm package would conflict with it).
if [ "${1:-}" = "--test" ] && ! { command -v node && command -v npm; } >/dev/null 2>&1; then
    want="$want nodejs npm"
fi

missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing$missing"
if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages and not root; run as root:" >&2
    echo "  apt-get install$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/dev/null
