#!/usr/bin/env bash
# Side-by-side benchmark of 3-server ensembles: rzk and Apache ZooKeeper 3.8 (Debian package),
# each started on loopback with scripts/ensemble.sh (same settings: tickTime 2000, initLimit 10,
# syncLimit 5, forceSync on), one after the other. For each: rzk-bench workloads with every
# session's connect string naming all three servers, then a failover timing repeated a few
# times: kill -9 the leader, and time until a create succeeds through a surviving server (a
# small raw-protocol loop: connect, create, retry every 20 ms), then restart the old leader
# and wait until it follows again. A table with both flavors and the ratio closes the run.
# All ensembles run side by side and every workload runs on each in turn (interleaved), so a
# machine that slows down during the run slows every flavor alike.
#
#   scripts/bench-ensemble.sh [--only apache|rzk] [--seconds S] [--ops LIST] [--shapes LIST]
#                             [--size BYTES] [--failovers N] [--baseline RZK_SERVER]
#                             [--rounds N] [--keep]
#
#   --only FLAVOR     run only this flavor
#   --baseline BIN    also run an ensemble of this rzk-server binary (an older build: before
#                     and after in one run); the table adds its ops/s and the rzk/base ratio
#   --seconds S       seconds per workload (default 10)
#   --ops LIST        comma-separated rzk-bench ops (default create,set,get)
#   --shapes LIST     comma-separated SESSIONSxINFLIGHT (default 1x1,32x32)
#   --size BYTES      value size (default 100)
#   --failovers N     leader kills to time per flavor (default 3; 0 = skip)
#   --rounds N        run every workload N times (all flavors in turn each round); the table
#                     shows each flavor's median round and the min-max spread of its ops/s,
#                     so a difference can be read against this run's own noise (default 1)
#   --keep            keep the work directory (configs, data, logs)
#
# Ports: rzk's servers listen for clients on 21181-21183, the baseline's on 21191-21193 and
# Apache's on 21281-21283, with quorum ports 21381+ / 21391+ / 21481+ and election ports 21581+ /
# 21591+ / 21681+ (below the kernel's ephemeral range, so outgoing connections never take them). JVM_OPTS overrides Apache's JVM options
# (default -Xmx2g).
set -euo pipefail
cd "$(dirname "$0")/.."

only=
seconds=10
ops=create,set,get
shapes=1x1,32x32
size=100
failovers=3
baseline=
rounds=1
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --only) only=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --ops) ops=$2; shift 2 ;;
        --shapes) shapes=$2; shift 2 ;;
        --size) size=$2; shift 2 ;;
        --failovers) failovers=$2; shift 2 ;;
        --baseline) baseline=$(realpath "$2"); shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
case "$only" in
    '') flavors="rzk apache" ;;
    rzk | apache) flavors=$only ;;
    *) echo "--only takes apache or rzk" >&2; exit 2 ;;
esac
if [ -n "$baseline" ]; then
    [ -x "$baseline" ] || { echo "--baseline $baseline is not an executable" >&2; exit 2; }
    flavors="$flavors base"
fi

if [[ " $flavors " == *" apache "* ]] && [ ! -f /usr/share/java/zookeeper.jar ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install --yes --no-install-recommends zookeeper
fi
cargo build --release --bins --quiet
bench=target/release/rzk-bench
work=$(mktemp --directory /tmp/rzk-bench-ensemble.XXXXXX)
started=()
cleanup() {
    for f in "${started[@]}"; do
        scripts/ensemble.sh --dir "$work/$f" stop >/dev/null 2>&1 || true
    done
    if [ "$keep" -eq 0 ]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT

ensemble() { # flavor args... -> scripts/ensemble.sh on that flavor's directory and ports
    local f=$1 offset=0 server=target/release/rzk-server
    shift
    [ "$f" = apache ] && offset=100
    [ "$f" = base ] && offset=10 server=$baseline
    RZK_ENSEMBLE_CLIENT_BASE=$((21181 + offset)) RZK_ENSEMBLE_QUORUM_BASE=$((21381 + offset)) \
        RZK_ENSEMBLE_ELECTION_BASE=$((21581 + offset)) JVM_OPTS=${JVM_OPTS:--Xmx2g} \
        RZK_SERVER=$server RUST_LOG=${RUST_LOG:-warn} scripts/ensemble.sh --dir "$work/$f" "$@"
}

leader() { # flavor -> "id pid" of the server whose srvr says leader (nothing if none)
    ensemble "$1" status | awk '$4 == "leader" { print $1, $3 }'
}

# One failover: kill -9 the leader (pid $1), then connect and create through 127.0.0.1:$2 until
# the create succeeds; prints the seconds from the kill to the successful create.
failover_once() { # leader-pid port path
    python3 - "$@" <<'EOF'
import os, signal, socket, struct, sys, time

pid, port, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

def frame(payload):
    return struct.pack(">i", len(payload)) + payload

def read_frame(s):
    def exact(n):
        b = b""
        while len(b) < n:
            chunk = s.recv(n - len(b))
            if not chunk:
                raise ConnectionError("closed")
            b += chunk
        return b
    (n,) = struct.unpack(">i", exact(4))
    return exact(n)

def zk_string(v):
    b = v.encode()
    return struct.pack(">i", len(b)) + b

def try_create():
    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        s.settimeout(2)
        # ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly
        s.sendall(frame(struct.pack(">iqiqi", 0, 0, 10000, 0, 16) + bytes(16) + b"\0"))
        (_, timeout) = struct.unpack(">ii", read_frame(s)[:8])
        if timeout <= 0:
            return False
        acl = struct.pack(">ii", 1, 31) + zk_string("world") + zk_string("anyone")
        body = zk_string(path) + struct.pack(">i", 0) + acl + struct.pack(">i", 0)
        s.sendall(frame(struct.pack(">ii", 1, 1) + body))  # xid 1, create
        xid, _, err = struct.unpack(">iqi", read_frame(s)[:16])
        s.sendall(frame(struct.pack(">ii", 2, -11)))  # closeSession
        return err in (0, -110)  # ok, or NodeExists after a lost reply

start = time.monotonic()
os.kill(pid, signal.SIGKILL)
deadline = start + 60
while True:
    try:
        if try_create():
            break
    except (OSError, ConnectionError, struct.error):
        pass
    if time.monotonic() > deadline:
        sys.exit("no successful create within 60 s")
    time.sleep(0.02)
print(f"{time.monotonic() - start:.3f}")
EOF
}

results="$work/results.jsonl"
: >"$results"
failed=()
running=()
for f in $flavors; do
    echo "== $f: starting a 3-server ensemble"
    flag=
    [ "$f" = apache ] && flag=--apache
    started+=("$f")
    if ! ensemble "$f" $flag --size 3 start; then
        echo "== $f: the ensemble did not start; skipping $f (logs in $work/$f/*/log)" >&2
        [ "$keep" -eq 1 ] || tail -n 5 "$work/$f"/*/log >&2 || true
        failed+=("$f")
        continue
    fi
    running+=("$f")
done
declare -A connect
for f in "${running[@]}"; do
    connect[$f]=$(ensemble "$f" connect-string)
    # Apache's JIT needs a warm-up; give every flavor the same one.
    "$bench" --connect "${connect[$f]}" --sessions 8 --inflight 8 --op mixed:50 --size "$size" \
        --znodes 1000 --seconds 3 --json >/dev/null
done
for round in $(seq 1 "$rounds"); do
    for op in ${ops//,/ }; do
        for shape in ${shapes//,/ }; do
            sessions=${shape%x*}
            inflight=${shape#*x}
            for f in "${running[@]}"; do
                line=$("$bench" --connect "${connect[$f]}" --sessions "$sessions" \
                    --inflight "$inflight" --op "$op" --size "$size" --znodes 1000 \
                    --seconds "$seconds" --json | grep '^{')
                echo "{\"server\":\"$f\",\"round\":$round,${line#\{}" >>"$results"
                echo "$f $op $shape (round $round): $line"
            done
        done
    done
done
for f in "${running[@]}"; do
    for n in $(seq 1 "$failovers"); do
        read -r id pid <<<"$(leader "$f")" || true
        if [ -z "${id:-}" ]; then
            echo "== $f: no leader before failover $n" >&2
            ensemble "$f" status >&2
            failed+=("$f")
            break
        fi
        survivor=1
        [ "$id" = 1 ] && survivor=2
        port=$(ensemble "$f" status | awk -v s="$survivor" '$1 == s { print $2 }')
        took=$(failover_once "$pid" "$port" "/failover-$n") || { failed+=("$f"); break; }
        new=$(leader "$f")
        echo "$f failover $n: killed leader $id; a create through server $survivor succeeded after ${took} s (leader now ${new%% *})"
        echo "{\"server\":\"$f\",\"op\":\"failover\",\"seconds\":$took}" >>"$results"
        ensemble "$f" restart "$id" >/dev/null
        # Wait (bounded) until all three serve again, the old leader as a follower.
        for _ in $(seq 1 300); do
            [ "$(ensemble "$f" status | awk '$4 == "leader" || $4 == "follower"' | wc -l)" -eq 3 ] && break
            sleep 0.2
        done
    done
    ensemble "$f" status
    ensemble "$f" stop >/dev/null
done

python3 - "$results" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
runs = {}
for r in rows:
    if r["op"] == "failover":
        continue
    runs.setdefault((r["op"], r["sessions"], r["inflight"]), {}).setdefault(r["server"], []).append(r)
bench = {}  # workload -> flavor -> its median round (by ops/s)
spread = {}  # workload -> flavor -> (min, max) ops/s over the rounds
for w, by in runs.items():
    for f, rs in by.items():
        rs.sort(key=lambda r: r["ops_per_sec"])
        bench.setdefault(w, {})[f] = rs[(len(rs) - 1) // 2]
        spread.setdefault(w, {})[f] = (rs[0]["ops_per_sec"], rs[-1]["ops_per_sec"])
rounds = max(len(rs) for by in runs.values() for rs in by.values()) if runs else 1
def ops(r):
    return f"{r['ops_per_sec']:.0f}" if r else "-"
def lat(r):
    return f"{r['p50_us']}/{r['p99_us']}" if r else "-"
def span(w, f):
    lo_hi = spread.get(w, {}).get(f)
    return f"{lo_hi[0]:.0f}-{lo_hi[1]:.0f}" if lo_hi else "-"
print("3-server ensembles on loopback, rzk-bench connected to all three servers"
      + (f"; median of {rounds} rounds, spread = min-max ops/s" if rounds > 1 else ""))
has_base = any(r["server"] == "base" for r in rows)
base_head = f" {'base ops/s':>11} {'rzk/base':>8} {'base p50/p99 us':>16}" if has_base else ""
spread_head = f" {'rzk spread':>15}" + (f" {'base spread':>15}" if has_base else "") if rounds > 1 else ""
print(f"{'workload':<16} {'rzk ops/s':>11} {'apache ops/s':>13} {'ratio':>6}   "
      f"{'rzk p50/p99 us':>17} {'apache p50/p99 us':>18}{base_head}{spread_head}")
def ratio(x, y):
    return f"{x['ops_per_sec'] / max(y['ops_per_sec'], 1e-9):.2f}x" if x and y else "-"
for w, by in bench.items():
    op, s, k = w
    z, a, b = by.get("rzk"), by.get("apache"), by.get("base")
    base = f" {ops(b):>11} {ratio(z, b):>8} {lat(b):>16}" if has_base else ""
    sp = f" {span(w, 'rzk'):>15}" + (f" {span(w, 'base'):>15}" if has_base else "") if rounds > 1 else ""
    print(f"{op + ' ' + str(s) + 'x' + str(k):<16} {ops(z):>11} {ops(a):>13} {ratio(z, a):>6}   "
          f"{lat(z):>17} {lat(a):>18}{base}{sp}")
for server in ("rzk", "base", "apache"):
    t = [r["seconds"] for r in rows if r["op"] == "failover" and r["server"] == server]
    if t:
        print(f"{server}: leader kill -9 -> create through a survivor: min {min(t):.3f} s, "
              f"median {statistics.median(t):.3f} s, max {max(t):.3f} s ({len(t)} runs)")
EOF
if [ "${#failed[@]}" -gt 0 ]; then
    echo "failed: ${failed[*]}" >&2
    exit 1
fi
