#!/usr/bin/env bash
# Runs the cargo-fuzz targets of tests/fuzz (README "Fuzzing"), one after the other, each for
# the given time, starting from the seed corpus tests/fuzz/corpus/<target>. Needs the nightly
# toolchain and cargo-fuzz (scripts/test.sh installs both).
#
#   scripts/fuzz.sh --minutes N [--target T]   exploration: N minutes per target; what it finds
#                                               is kept in tests/fuzz/target/corpus/<target>
#                                               and grows from run to run
#   scripts/fuzz.sh --seconds N [--target T]   a short run from the seeds alone (scripts/test.sh
#                                               uses --seconds 10), in a temporary corpus
#
# Every target runs with bounded memory: -rss_limit_mb 512 and -malloc_limit_mb 64, far above
# the largest legitimate allocation (a quorum packet or SNAP field of 2 x jute.maxbuffer, 2 MiB)
# and far below what a length field taken on trust asks for (up to 2 GiB), so such a bug is an
# OOM crash. A crash, OOM or timeout leaves its input in tests/fuzz/artifacts/<target>/ and
# makes the script exit 1 after the other targets ran. The last line is
# "fuzz: N targets clean, M crashed; build Ss, total Ts".
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    echo "usage: scripts/fuzz.sh (--minutes N | --seconds N) [--target T]" >&2
    exit 2
}

seconds=
target=
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) [ $# -ge 2 ] || usage; seconds=$(($2 * 60)); shift 2 ;;
        --seconds) [ $# -ge 2 ] || usage; seconds=$2; keep_corpus=no; shift 2 ;;
        --target) [ $# -ge 2 ] || usage; target=$2; shift 2 ;;
        *) usage ;;
    esac
done
[ -n "$seconds" ] || usage
keep_corpus=${keep_corpus:-yes}

fuzz_dir=tests/fuzz
fuzz=(cargo +nightly fuzz)
"${fuzz[@]}" build --fuzz-dir "$fuzz_dir" ${target:+"$target"}
built=$SECONDS
if [ -n "$target" ]; then
    targets=("$target")
else
    mapfile -t targets < <("${fuzz[@]}" list --fuzz-dir "$fuzz_dir")
fi

scratch=$(mktemp --directory)
trap 'rm -rf "$scratch"' EXIT
clean=0
crashed=()
for t in "${targets[@]}"; do
    if [ "$keep_corpus" = yes ]; then
        work="$fuzz_dir/target/corpus/$t"
    else
        work="$scratch/$t"
    fi
    mkdir -p "$work" "$fuzz_dir/artifacts/$t"
    echo "fuzz: $t for ${seconds}s"
    # New inputs go to the first corpus directory (the work one), never into the seeds.
    if "${fuzz[@]}" run --fuzz-dir "$fuzz_dir" "$t" "$work" "$fuzz_dir/corpus/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=512 -malloc_limit_mb=64 -timeout=10 \
        -print_final_stats=1 >"$scratch/$t.log" 2>&1; then
        grep --extended-regexp '^(stat::number_of_executed_units|Done)' "$scratch/$t.log" || true
        clean=$((clean + 1))
    else
        tail --lines=60 "$scratch/$t.log"
        echo "fuzz: $t crashed; its input is in $fuzz_dir/artifacts/$t/; reproduce with" >&2
        echo "  cargo +nightly fuzz run --fuzz-dir $fuzz_dir $t $fuzz_dir/artifacts/$t/<file>" >&2
        crashed+=("$t")
    fi
done
echo "fuzz: ${clean} targets clean, ${#crashed[@]} crashed${crashed:+ (${crashed[*]})};" \
    "build ${built}s, total ${SECONDS}s"
[ ${#crashed[@]} -eq 0 ]
