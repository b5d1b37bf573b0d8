#!/usr/bin/env bash
# What a SNAP costs the leader: a 3-server rzk ensemble holding ZNODES znodes (default
# 1,000,000) of 100 bytes; a write load (rzk-bench set, SHAPE sessions x in flight) runs
# against the leader twice for the same length of time: once with nothing else going on, once
# while a follower with an empty data dir joins and is sent the whole tree by SNAP. Prints
# the leader's write throughput and p50/p99 in both runs, their p99 ratio, the SNAP's size and
# duration (from the leader's log), and the growth of the leader's RSS during the SNAP
# (sampled every 20 ms from /proc).
#
#   scripts/bench-snap.sh [--znodes N] [--shape SxK] [--seconds S]
#
# --seconds is the length of each measured run (default: the SNAP's duration as measured by a
# first trial SNAP, at least 2 s). Builds the release binaries if needed. Loopback only; the
# ensemble lives in a temp dir that is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

znodes=1000000
shape=4x4
seconds=
while [ $# -gt 0 ]; do
    case "$1" in
        --znodes) znodes=$2; shift 2 ;;
        --shape) shape=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
sessions=${shape%x*}
inflight=${shape#*x}

[ -x target/release/rzk-server ] && [ -x target/release/rzk-bench ] \
    || cargo build --release --bins
bench=target/release/rzk-bench

work=$(mktemp -d /tmp/rzk-bench-snap.XXXXXX)
export RZK_ENSEMBLE_DIR=$work
export RZK_ENSEMBLE_CLIENT_BASE=${RZK_ENSEMBLE_CLIENT_BASE:-24181}
export RZK_ENSEMBLE_QUORUM_BASE=${RZK_ENSEMBLE_QUORUM_BASE:-24888}
export RZK_ENSEMBLE_ELECTION_BASE=${RZK_ENSEMBLE_ELECTION_BASE:-25888}
cleanup() {
    scripts/ensemble.sh stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

scripts/ensemble.sh start >/dev/null
leader=
for id in 1 2 3; do
    mode=$(scripts/ensemble.sh status | awk -v id="$id" '$1 == id { print $NF }')
    [ "$mode" = leader ] && leader=$id
done
[ -n "$leader" ] || { echo "no leader" >&2; scripts/ensemble.sh status >&2; exit 1; }
# The follower that will rejoin by SNAP: the highest id that is not the leader.
joiner=3
[ "$leader" = 3 ] && joiner=2
leader_port=$((RZK_ENSEMBLE_CLIENT_BASE + leader - 1))
leader_pid=$(cat "$work/$leader/pid")
echo "leader $leader (pid $leader_pid, port $leader_port), joiner $joiner"

echo "populating $znodes znodes..."
$bench --connect "127.0.0.1:$leader_port" --sessions 16 --inflight 64 --op create --size 100 \
    --ops "$znodes" --root /snapbench --keep-znodes --json >/dev/null
# Set targets for the write load (a second, small root so the load touches existing nodes).
$bench --connect "127.0.0.1:$leader_port" --op get --znodes 1000 --root /load --keep-znodes \
    --ops 1 --json >/dev/null

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# Empties the joiner's data so the leader must SNAP it, and starts it.
rejoin() {
    scripts/ensemble.sh stop-peer "$joiner" >/dev/null
    rm -rf "$work/$joiner/version-2"
    : > "$work/$leader/log.mark"
    scripts/ensemble.sh start-peer "$joiner" >/dev/null 2>&1 &
}

# The leader's SNAP line since the last rejoin: "... N znodes, B bytes in T ms".
snap_line() {
    grep -a "SNAP of zxid" "$work/$leader/log" | grep -a "znodes" | tail -1
}

load() { # seconds -> rzk-bench JSON
    $bench --connect "127.0.0.1:$leader_port" --sessions "$sessions" --inflight "$inflight" \
        --op set --size 100 --znodes 1000 --root /load --keep-znodes --seconds "$1" --json
}

json_field() { # json key
    sed -E "s/.*\"$2\":([0-9.]+).*/\1/" <<<"$1"
}

wait_synced() {
    local deadline=$((SECONDS + 120))
    while [ $SECONDS -lt $deadline ]; do
        mode=$(scripts/ensemble.sh status | awk -v id="$joiner" '$1 == id { print $NF }')
        [ "$mode" = follower ] && return 0
        sleep 0.2
    done
    echo "joiner never synced" >&2
    exit 1
}

if [ -z "$seconds" ]; then
    echo "trial SNAP to time it..."
    rejoin
    wait_synced
    ms=$(snap_line | sed -E 's/.* in ([0-9]+) ms.*/\1/')
    seconds=$(( (ms + 999) / 1000 ))
    [ "$seconds" -ge 2 ] || seconds=2
    echo "trial: $(snap_line | sed -E 's/.*(SNAP of zxid.*)/\1/')"
fi

echo "run without a SNAP ($seconds s of $shape set)..."
quiet=$(load "$seconds")

echo "run with a SNAP ($seconds s of $shape set, the follower joins at the start)..."
rss_before=$(rss_kb "$leader_pid")
peak=$rss_before
rejoin
( while sleep 0.02; do rss_kb "$leader_pid"; done ) > "$work/rss" &
sampler=$!
busy=$(load "$seconds")
kill "$sampler" 2>/dev/null || true
wait_synced
peak=$(sort -n "$work/rss" | tail -1)
line=$(snap_line)

q99=$(json_field "$quiet" p99_us); b99=$(json_field "$busy" p99_us)
q50=$(json_field "$quiet" p50_us); b50=$(json_field "$busy" p50_us)
qops=$(json_field "$quiet" ops_per_sec); bops=$(json_field "$busy" ops_per_sec)
echo
echo "SNAP: $(sed -E 's/.*(SNAP of zxid.*)/\1/' <<<"$line")"
printf '%-14s %12s %10s %10s\n' run ops/s p50_us p99_us
printf '%-14s %12s %10s %10s\n' "no SNAP" "$qops" "$q50" "$q99"
printf '%-14s %12s %10s %10s\n' "during SNAP" "$bops" "$b50" "$b99"
awk -v a="$b99" -v b="$q99" 'BEGIN { printf "p99 ratio (during / without): %.2fx\n", a / b }'
echo "leader RSS: $((rss_before / 1024)) MB before, $((peak / 1024)) MB peak during the SNAP: +$(((peak - rss_before) / 1024)) MB"
