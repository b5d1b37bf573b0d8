#!/usr/bin/env bash
# Side-by-side benchmark: rzk and Apache ZooKeeper 3.8 (Debian package) on loopback with the
# same settings (standalone, tickTime 2000, forceSync on, data under one temp directory), the
# same rzk-bench workloads against each in the same run, then a table with both and the ratio.
#
#   scripts/bench.sh [--seconds S] [--ops LIST] [--shapes LIST] [--size BYTES]
#                    [--restart-znodes N] [--baseline RZK_SERVER] [--tls] [--keep]
#
#   --seconds S          seconds per workload (default 10)
#   --ops LIST           comma-separated rzk-bench ops (default create,set,get)
#   --shapes LIST        comma-separated SESSIONSxINFLIGHT (default 1x1,8x8,32x32)
#   --size BYTES         value size (default 100)
#   --restart-znodes N   also time a restart with N znodes (default 0 = skip)
#   --baseline BIN       also run this rzk-server binary (an older build: before/after in one
#                        run); the table adds its ops/s and the rzk/baseline ratio
#   --tls                TLS mode: both servers also get a secureClientPort (PEM stores from one
#                        test CA, ssl.clientAuth=need; Apache with its Netty factory, which TLS
#                        needs); each workload runs on rzk's plain port, rzk's TLS port and
#                        Apache's TLS port, and the table shows rzk TLS / Apache TLS and rzk
#                        TLS / rzk plain
#   --keep               keep the temp directory
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=10
ops=create,set,get
shapes=1x1,8x8,32x32
size=100
restart_znodes=0
keep=0
baseline=
tls=0
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds=$2; shift 2 ;;
        --ops) ops=$2; shift 2 ;;
        --shapes) shapes=$2; shift 2 ;;
        --size) size=$2; shift 2 ;;
        --restart-znodes) restart_znodes=$2; shift 2 ;;
        --baseline) baseline=$(realpath "$2"); shift 2 ;;
        --tls) tls=1; shift ;;
        --keep) keep=1; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

if [ ! -f /usr/share/java/zookeeper.jar ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install --yes --no-install-recommends zookeeper
fi
cargo build --release --bins --quiet
bench=target/release/rzk-bench
work=$(mktemp --directory /tmp/rzk-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    if [ "$keep" -eq 0 ]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT

free_port() { # a free port whose successor is free too (the secure port in --tls mode)
    python3 -c '
import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    try:
        t = socket.socket(); t.bind(("127.0.0.1", p + 1)); t.close(); print(p); break
    except OSError:
        s.close()'
}

write_cfg() { # name port
    mkdir -p "$work/$1/data"
    cat >"$work/$1/zoo.cfg" <<EOF
tickTime=2000
dataDir=$work/$1/data
clientPort=$2
clientPortAddress=127.0.0.1
maxClientCnxns=0
4lw.commands.whitelist=*
admin.enableServer=false
forceSync=yes
EOF
    if [ "$tls" -eq 1 ]; then
        cat >>"$work/$1/zoo.cfg" <<EOF
secureClientPort=$(($2 + 1))
ssl.keyStore.location=$work/tls/server.pem
ssl.keyStore.type=PEM
ssl.trustStore.location=$work/tls/ca.pem
ssl.trustStore.type=PEM
ssl.clientAuth=need
EOF
        if [ "$1" = apache ]; then
            echo "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory" \
                >>"$work/$1/zoo.cfg"
        fi
    fi
}

make_tls() { # a CA, a server certificate for localhost/127.0.0.1, a client certificate
    local d=$work/tls
    mkdir -p "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=bench-ca -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
    for who in server client; do
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$who" \
            -keyout "$d/$who.key" -out "$d/$who.csr" 2>/dev/null
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$d/$who.ext"
        openssl x509 -req -in "$d/$who.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
            -CAcreateserial -days 2 -extfile "$d/$who.ext" -out "$d/$who.crt" 2>/dev/null
        openssl pkcs8 -topk8 -nocrypt -in "$d/$who.key" -out "$d/$who.p8"
        cat "$d/$who.p8" "$d/$who.crt" >"$d/$who.pem"
    done
    cat >"$d/client.properties" <<EOF
zookeeper.client.secure=true
zookeeper.ssl.keyStore.location=$d/client.pem
zookeeper.ssl.keyStore.type=PEM
zookeeper.ssl.trustStore.location=$d/ca.pem
zookeeper.ssl.trustStore.type=PEM
EOF
}

serving() { # port: "yes" once srvr answers (ruok answers even while a server loads its data)
    local answer
    answer=$(timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf srvr >&3 && head -c 17 <&3" \
        2>/dev/null) || true
    if [ "$answer" = "Zookeeper version" ]; then echo yes; else echo no; fi
}

start_server() { # name port -> pid in $server_pid
    if [ "$1" = rzk ]; then
        RUST_LOG=warn target/release/rzk-server "$work/rzk/zoo.cfg" >"$work/rzk/log" 2>&1 &
    elif [ "$1" = base ]; then
        RUST_LOG=warn "$baseline" "$work/base/zoo.cfg" >"$work/base/log" 2>&1 &
    else
        java -Xmx4g -Dzookeeper.log.dir="$work/apache" \
            -cp "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:$netty_jars" \
            org.apache.zookeeper.server.quorum.QuorumPeerMain "$work/apache/zoo.cfg" \
            >"$work/apache/log" 2>&1 &
    fi
    server_pid=$!
    pids+=("$server_pid")
    for _ in $(seq 1 3000); do
        if [ "$(serving "$2")" = yes ]; then return 0; fi
        sleep 0.01
    done
    echo "$1 did not start; see $work/$1/log" >&2
    exit 1
}

# Netty's codec and handler jars: zookeeper.jar's manifest leaves them out, its Netty
# connection factory (TLS) needs them.
netty_jars=/usr/share/java/netty-codec.jar:/usr/share/java/netty-handler.jar:/usr/share/java/netty-resolver.jar
if [ "$tls" -eq 1 ]; then make_tls; fi
rzk_port=$(free_port)
apache_port=$(free_port)
write_cfg rzk "$rzk_port"
write_cfg apache "$apache_port"
start_server rzk "$rzk_port"
rzk_pid=$server_pid
start_server apache "$apache_port"
apache_pid=$server_pid
servers="rzk apache"
ports=("$rzk_port" "$apache_port")
if [ -n "$baseline" ]; then
    base_port=$(free_port)
    write_cfg base "$base_port"
    start_server base "$base_port"
    servers="rzk base apache"
    ports+=("$base_port")
fi
port_of() { # server
    case "$1" in
        rzk) echo "$rzk_port" ;; apache) echo "$apache_port" ;; base) echo "$base_port" ;;
        rzk-tls) echo $((rzk_port + 1)) ;; apache-tls) echo $((apache_port + 1)) ;;
    esac
}
security_of() { # server: rzk-bench's --client-configuration for it, if any
    case "$1" in *-tls) echo "--client-configuration $work/tls/client.properties" ;; esac
}
if [ "$tls" -eq 1 ]; then
    servers="rzk rzk-tls apache-tls"
    if [ -n "$baseline" ]; then servers="rzk rzk-tls base apache-tls"; fi
fi

results="$work/results.jsonl"
: >"$results"
# Apache's JIT needs a warm-up; give both servers the same one.
for server in $servers; do
    # shellcheck disable=SC2046
    "$bench" --connect "localhost:$(port_of "$server")" $(security_of "$server") --sessions 8 \
        --inflight 8 --op mixed:50 --size "$size" --znodes 1000 --seconds 3 --json >/dev/null
done
for op in ${ops//,/ }; do
    for shape in ${shapes//,/ }; do
        sessions=${shape%x*}
        inflight=${shape#*x}
        for server in $servers; do
            port=$(port_of "$server")
            # shellcheck disable=SC2046
            line=$("$bench" --connect "localhost:$port" $(security_of "$server") --sessions "$sessions" \
                --inflight "$inflight" --op "$op" --size "$size" --znodes 1000 \
                --seconds "$seconds" --json | grep '^{')
            echo "{\"server\":\"$server\",${line#\{}" >>"$results"
        done
    done
done

if [ "$restart_znodes" -gt 0 ]; then
    for server in rzk apache; do
        port=$rzk_port
        [ "$server" = apache ] && port=$apache_port
        "$bench" --connect "127.0.0.1:$port" --sessions 16 --inflight 64 --op create \
            --size "$size" --znodes 0 --ops "$restart_znodes" --root /restart --keep-znodes \
            --json >/dev/null
    done
    kill -9 "$rzk_pid" "$apache_pid"
    wait "$rzk_pid" "$apache_pid" 2>/dev/null || true
    for server in rzk apache; do
        port=$rzk_port
        [ "$server" = apache ] && port=$apache_port
        start=$(date +%s.%N)
        start_server "$server" "$port"
        end=$(date +%s.%N)
        echo "{\"server\":\"$server\",\"op\":\"restart\",\"znodes\":$restart_znodes,\"seconds\":$(python3 -c "print($end - $start)")}" >>"$results"
    done
fi

python3 - "$results" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
bench = {}
for r in rows:
    if r["op"] == "restart":
        continue
    key = (r["op"], r["sessions"], r["inflight"])
    bench.setdefault(key, {})[r["server"]] = r
has_base = any(r["server"] == "base" for r in rows)
if any(r["server"] == "rzk-tls" for r in rows):
    print(f"{'workload':<22} {'rzk TLS ops/s':>13} {'apache TLS':>11} {'ratio':>6}   "
          f"{'rzk plain':>10} {'TLS/plain':>9}   {'rzk TLS p50/p99 us':>19} {'apache TLS p50/p99':>19}")
    for (op, s, k), by in bench.items():
        z, a, p = by.get("rzk-tls"), by.get("apache-tls"), by.get("rzk")
        if not z or not a or not p:
            continue
        print(f"{op + ' ' + str(s) + 'x' + str(k):<22} {z['ops_per_sec']:>13.0f} "
              f"{a['ops_per_sec']:>11.0f} {z['ops_per_sec'] / max(a['ops_per_sec'], 1e-9):>5.2f}x   "
              f"{p['ops_per_sec']:>10.0f} {z['ops_per_sec'] / max(p['ops_per_sec'], 1e-9):>8.2f}x   "
              f"{str(z['p50_us']) + '/' + str(z['p99_us']):>19} "
              f"{str(a['p50_us']) + '/' + str(a['p99_us']):>19}")
    sys.exit(0)
base_head = f" {'base ops/s':>11} {'rzk/base':>8} {'base p50/p99 us':>16}" if has_base else ""
print(f"{'workload':<22} {'rzk ops/s':>11} {'apache ops/s':>13} {'ratio':>6}   "
      f"{'rzk p50/p99 us':>17} {'apache p50/p99 us':>18}  {'bench cpu':>9}{base_head}")
for (op, s, k), by in bench.items():
    a, z, b = by.get("apache"), by.get("rzk"), by.get("base")
    if not a or not z:
        continue
    ratio = z["ops_per_sec"] / max(a["ops_per_sec"], 1e-9)
    cpu = (z["cpu_user_s"] + z["cpu_sys_s"]) / max(z["seconds"], 1e-9)
    base = ""
    if b:
        base = (f" {b['ops_per_sec']:>11.0f} {z['ops_per_sec'] / max(b['ops_per_sec'], 1e-9):>7.2f}x"
                f" {str(b['p50_us']) + '/' + str(b['p99_us']):>16}")
    print(f"{op + ' ' + str(s) + 'x' + str(k):<22} {z['ops_per_sec']:>11.0f} "
          f"{a['ops_per_sec']:>13.0f} {ratio:>5.2f}x   "
          f"{str(z['p50_us']) + '/' + str(z['p99_us']):>17} "
          f"{str(a['p50_us']) + '/' + str(a['p99_us']):>18}  {cpu * 100:>8.0f}%{base}")
restarts = {r["server"]: r for r in rows if r["op"] == "restart"}
if restarts:
    z, a = restarts.get("rzk"), restarts.get("apache")
    print(f"restart with {z['znodes']} znodes: rzk {z['seconds']:.2f} s, "
          f"apache {a['seconds']:.2f} s, ratio {a['seconds'] / max(z['seconds'], 1e-9):.1f}x faster")
print("(bench cpu = rzk-bench's own CPU while driving rzk, in % of one core)")
EOF
