#!/usr/bin/env bash
# Vendors the dashboard's browser assets (htmx 2 and its SSE extension) into
# app/dashboard/static/vendor/, so the dashboard loads without a CDN. The output is
# committed; run this only to upgrade: edit a version below, run it, review and commit the
# diff. Stay on htmx 2.0.x and htmx-ext-sse 2.2.x (htmx 4 is another major; see STACK.md).
# Needs npm and the npm registry; nothing else is fetched.
set -euo pipefail

HTMX_VERSION=2.0.11     # npm: htmx.org
HTMX_SSE_VERSION=2.2.4  # npm: htmx-ext-sse (needs htmx.org ^2.0.2)

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=$repo/app/dashboard/static/vendor
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --ignore-scripts: no package install scripts run; the files are only copied.
npm install --prefix "$tmp" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
    "htmx.org@$HTMX_VERSION" "htmx-ext-sse@$HTMX_SSE_VERSION" >/dev/null

htmx=$tmp/node_modules/htmx.org
sse=$tmp/node_modules/htmx-ext-sse

check_version() {  # package dir, expected version
    local got
    got=$(node -p "require('$1/package.json').version")
    [[ $got == "$2" ]] || { echo "expected $(basename "$1")@$2, npm installed $got" >&2; exit 1; }
}
check_version "$htmx" "$HTMX_VERSION"
check_version "$sse" "$HTMX_SSE_VERSION"

rm -rf "$dest/htmx" "$dest/htmx-ext-sse"
mkdir -p "$dest/htmx" "$dest/htmx-ext-sse"
install -m 0644 "$htmx/dist/htmx.min.js" "$htmx/LICENSE" "$dest/htmx/"
install -m 0644 "$sse/dist/sse.min.js" "$sse/LICENSE" "$dest/htmx-ext-sse/"
echo "$HTMX_VERSION" >"$dest/htmx/VERSION"
echo "$HTMX_SSE_VERSION" >"$dest/htmx-ext-sse/VERSION"

if grep -lE '^(//|/\*)# sourceMappingURL=' "$dest"/htmx/*.js "$dest"/htmx-ext-sse/*.js; then
    echo "a source-map comment is left in the files above" >&2
    exit 1
fi

echo "vendored htmx.org@$HTMX_VERSION and htmx-ext-sse@$HTMX_SSE_VERSION into ${dest#"$repo"/}"
