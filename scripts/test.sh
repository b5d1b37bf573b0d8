#!/usr/bin/env bash
# The project's single test command: formatting, lints, Rust tests, a short run of every fuzz
# target (tests/fuzz, 10 s each), then the kazoo interop suite (tests/interop) against
# target/debug/rzk-server. Installs what is missing first (run as root on a fresh Debian
# machine): Apache ZooKeeper 3.8 (the oracle, for ZK_TARGET=apache and the Java CLI tests), a
# Python venv at .venv with the pinned tests/interop/requirements.txt, and the nightly toolchain
# with cargo-fuzz. The client and kazoo suites also run against a 3-peer rzk ensemble.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=()
[ -f /usr/share/java/zookeeper.jar ] || apt_packages+=(zookeeper)
command -v python3 >/dev/null || apt_packages+=(python3)
command -v tmux >/dev/null || apt_packages+=(tmux)
command -v openssl >/dev/null || apt_packages+=(openssl) # encrypted PEM keys in tests/tls.rs
python3 -c 'import ensurepip' 2>/dev/null || apt_packages+=(python3-venv)
command -v c++ >/dev/null || apt_packages+=(g++) # libFuzzer, built by libfuzzer-sys
if [ ${#apt_packages[@]} -gt 0 ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install --yes --no-install-recommends \
        "${apt_packages[@]}"
fi
if ! .venv/bin/python -c 'import kazoo, pytest, pytest_timeout, OpenSSL, jks, puresasl' 2>/dev/null; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --requirement tests/interop/requirements.txt
fi
if ! rustup toolchain list | grep --quiet '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2 --locked

cargo fmt --all -- --check
cargo fmt --manifest-path tests/fuzz/Cargo.toml --all -- --check
cargo clippy --all-targets -- --deny warnings
# The fault-injection build (fail-rs points compiled in) has its own target dir, so the rest
# of the suite runs against the default build.
CARGO_TARGET_DIR=target/failpoints cargo clippy --all-targets --features failpoints -- \
    --deny warnings
cargo clippy --manifest-path tests/fuzz/Cargo.toml --all-targets -- --deny warnings
cargo build --bins

log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test 2>&1 | tee --append "$log"
# Fail-stop: stages killed through fault points end the process (tests/fail_stop.rs).
CARGO_TARGET_DIR=target/failpoints cargo test --features failpoints --test fail_stop 2>&1 \
    | tee --append "$log"
# The client library's suite again, unchanged, against Apache ZooKeeper 3.8 and against a
# 3-peer rzk ensemble.
for target in apache rzk-ensemble; do
    RZK_TEST_TARGET=$target cargo test --test client_ops --test client_watches \
        --test client_session --test client_cli --test client_bench 2>&1 | tee --append "$log"
done
rust_passed=$(awk '/^test result:/ { n += $4 } END { print n + 0 }' "$log")
rust_failed=$(awk '/^test result:/ { n += $6 } END { print n + 0 }' "$log")

# Every fuzz target for 10 s from its seed corpus; each counts as one test. A crash, an
# allocation past the budget or a hang fails the script (README "Fuzzing"); so does a build
# failure, which leaves no summary line.
status=0
scripts/fuzz.sh --seconds 10 2>&1 | tee "$log" || status=1
fuzz_summary=$(grep --extended-regexp '^fuzz: [0-9]+ targets clean, [0-9]+ crashed' "$log" || true)
fuzz_passed=$(awk '{ print $2 }' <<<"${fuzz_summary:-fuzz: 0}")
fuzz_failed=$(awk '{ print $5 }' <<<"${fuzz_summary:-fuzz: 0 targets clean, 1 crashed}")

# The kazoo suite against rzk standalone, then against a 3-peer rzk ensemble. pytest exits 1
# on failures and 5 when it collected nothing; both make this script fail.
py_passed=0
py_failed=0
for target in rzk rzk-ensemble; do
    (cd tests/interop && ZK_TARGET=$target ../../.venv/bin/python -m pytest -q) 2>&1 \
        | tee "$log" || status=$?
    summary=$(tail --lines=1 "$log")
    count() {
        grep --only-matching --extended-regexp "[0-9]+ $1" <<<"$summary" \
            | cut --delimiter=' ' --fields=1 || echo 0
    }
    passed=$(count passed)
    if [ "$passed" -eq 0 ]; then
        echo "scripts/test.sh: the interop suite ran no tests against $target" >&2
        status=1
    fi
    py_passed=$((py_passed + passed))
    py_failed=$((py_failed + $(count failed) + $(count error)))
done
echo "cargo test: ${rust_passed} passed, ${rust_failed} failed;" \
    "fuzz: ${fuzz_passed} targets clean, ${fuzz_failed} crashed;" \
    "interop: ${py_passed} passed, ${py_failed} failed"
# The last line counts every test: "N passed, N failed".
echo "$((rust_passed + fuzz_passed + py_passed)) passed," \
    "$((rust_failed + fuzz_failed + py_failed)) failed"
exit "$status"
