# Sourced by the scripts that build the deployable artifacts: cargo-lambda (with zig, in the
# venv VIGIL_LAMBDA_VENV, .venv-lambda by default) and the arm64 target, installed when
# missing, and cargo-lambda put on PATH.
venv=${VIGIL_LAMBDA_VENV:-.venv-lambda}
if ! "$venv/bin/cargo-lambda" lambda --version >/dev/null 2>&1; then
  echo "==> creating $venv with cargo-lambda (requirements-lambda.txt)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements-lambda.txt
fi
rustup target list --installed | grep -q '^aarch64-unknown-linux-gnu$' \
  || rustup target add aarch64-unknown-linux-gnu
PATH="$(cd "$venv/bin" && pwd):$PATH"
export PATH
