#!/usr/bin/env bash
# Vendors the browser assets of the API docs pages (Swagger UI and ReDoc) into
# app/api/static/vendor/, so the pages load without a CDN. The output is committed;
# run this only to upgrade: edit a version below, run it, review and commit the diff.
# Needs npm and the npm registry; nothing else is fetched.
set -euo pipefail

SWAGGER_UI_VERSION=5.35.0   # npm: swagger-ui-dist
REDOC_VERSION=2.5.4         # npm: redoc (2.x; bundles/redoc.standalone.js)

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=$repo/app/api/static/vendor
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --ignore-scripts: no package install scripts run; the files are only copied.
npm install --prefix "$tmp" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
    --legacy-peer-deps "swagger-ui-dist@$SWAGGER_UI_VERSION" "redoc@$REDOC_VERSION" >/dev/null

swagger=$tmp/node_modules/swagger-ui-dist
redoc=$tmp/node_modules/redoc

check_version() {  # package dir, expected version
    local got
    got=$(node -p "require('$1/package.json').version")
    [[ $got == "$2" ]] || { echo "expected $(basename "$1")@$2, npm installed $got" >&2; exit 1; }
}
check_version "$swagger" "$SWAGGER_UI_VERSION"
check_version "$redoc" "$REDOC_VERSION"

# The *.js.LICENSE.txt files hold the notices of the libraries bundled into each .js
# (whose first line points to them); no source maps (*.map) are copied.
rm -rf "$dest/swagger-ui" "$dest/redoc"
mkdir -p "$dest/swagger-ui" "$dest/redoc"
for f in swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt \
         swagger-ui-standalone-preset.js swagger-ui-standalone-preset.js.LICENSE.txt \
         swagger-ui.css favicon-32x32.png LICENSE NOTICE; do
    install -m 0644 "$swagger/$f" "$dest/swagger-ui/$f"
done
for f in bundles/redoc.standalone.js bundles/redoc.standalone.js.LICENSE.txt LICENSE; do
    install -m 0644 "$redoc/$f" "$dest/redoc/$(basename "$f")"
done

# Drop a trailing source-map comment, so browsers do not ask for the missing .map files.
for f in "$dest"/swagger-ui/*.js "$dest"/redoc/*.js; do
    sed -i '${/^\/\/# sourceMappingURL=/d}' "$f"
done
sed -i '${/^\/\*# sourceMappingURL=.*\*\/$/d}' "$dest/swagger-ui/swagger-ui.css"

if grep -lE '^(//|/\*)# sourceMappingURL=' "$dest"/swagger-ui/* "$dest"/redoc/*; then
    echo "a source-map comment is left in the files above" >&2
    exit 1
fi

echo "vendored swagger-ui-dist@$SWAGGER_UI_VERSION and redoc@$REDOC_VERSION into ${dest#"$repo"/}"
