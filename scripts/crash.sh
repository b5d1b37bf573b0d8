#!/usr/bin/env bash
# Longer crash-safety run than CI's: kill -9 the server under write load CYCLES times
# (default 200), restart it, and check that every acknowledged write survived.
#
#   scripts/crash.sh [--cycles N] [--seed S]
set -euo pipefail
cd "$(dirname "$0")/.."
cycles=200
seed=""
while [ $# -gt 0 ]; do
    case "$1" in
        --cycles) cycles=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
export RZK_CRASH_CYCLES=$cycles
[ -n "$seed" ] && export RZK_CRASH_SEED=$seed
cargo test --release --test crash -- --nocapture
