# Vigil's developer commands. `make test` is the one CI runs.
.PHONY: simulate demo test e2e deny lint-template sam-build build-lambdas fmt permissions

# The fault-injection experiment, baseline vs Vigil over seeds 1-10: every seed and the mean with
# its spread, then target/simulate/seeds.md (`vigil simulate --seed N`: one run, with report.md and charts).
simulate:
	cargo run --quiet --release -p vigil-cli -- simulate

# Replay the bundled sample events through ingest -> score -> decide -> remediate (dry-run).
demo:
	cargo run --quiet -p vigil-cli -- replay

# Lints and the whole test suite against a fresh moto server.
test:
	./scripts/test.sh

# End to end: the built function binaries behind a local Lambda Runtime API, against moto.
e2e:
	./scripts/test.sh e2e

# Licences, bans, sources and RustSec advisories, offline.
deny:
	./scripts/deny.sh

# sam validate --lint, cfn-lint and checkov on template.yaml.
lint-template:
	./scripts/lint-template.sh

# `sam build` as README.md documents it: every function's arm64 release artifact.
sam-build:
	./scripts/sam-build.sh

# The permission check alone: every operation of infra/permissions.yaml, every role, evaluated.
permissions:
	./scripts/permissions/setup.sh && ./scripts/permissions/run.sh >/dev/null

# The deployable artifacts (cargo lambda build --release --arm64), with their sizes.
build-lambdas:
	./scripts/build-lambdas.sh

fmt:
	cargo fmt --all
