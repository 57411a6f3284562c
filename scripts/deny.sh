#!/usr/bin/env bash
# Runs cargo-deny offline. The RustSec advisory database comes from a local snapshot
# (VIGIL_ADVISORY_DB, default ../shared/advisory-db), copied into target/ as the git checkout
# cargo-deny expects.
set -euo pipefail
cd "$(dirname "$0")/.."
src=${VIGIL_ADVISORY_DB:-../shared/advisory-db}
if [ ! -d "$src/crates" ]; then
  echo "error: no advisory database at $src (set VIGIL_ADVISORY_DB)" >&2
  exit 1
fi
# cargo-deny names the checkout after a hash of the default database URL.
dst=target/advisory-dbs/advisory-db-3157b0e258782691
rm -rf "$dst" && mkdir -p "$dst"
cp -R "$src"/. "$dst"/
(cd "$dst" && git init -q && git add -A && git -c user.name=vigil -c user.email=vigil@localhost commit -qm snapshot)
# cargo metadata needs every platform's dependencies present, then the check runs offline.
cargo fetch --locked -q
cargo deny --offline check
