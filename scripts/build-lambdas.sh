#!/usr/bin/env bash
# Builds the deployable artifacts the way `sam build` does (cargo-lambda, release, arm64) and
# reports their sizes. Installs cargo-lambda (with zig, in a venv) and the target if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lambda-toolchain.sh
cargo lambda build --release --arm64 --output-format zip \
  -p vigil-ingest -p vigil-score -p vigil-decide -p vigil-remediate -p vigil-gate -p vigil-approve
echo "==> artifacts"
for f in target/lambda/*/bootstrap.zip; do
  unzipped=$(python3 -c "import sys, zipfile; print(sum(i.file_size for i in zipfile.ZipFile(sys.argv[1]).infolist()))" "$f")
  printf '%-20s zip %8d bytes, unpacked %9d bytes\n' "$(basename "$(dirname "$f")")" "$(stat -c %s "$f")" "$unzipped"
done
