#!/usr/bin/env bash
# A local N-server ZooKeeper ensemble on loopback: rzk-server by default, Apache ZooKeeper 3.8
# (Debian package) with --apache. Each server runs in the background and outlives the script.
#
#   scripts/ensemble.sh [--apache] [--size N] [--dir DIR] COMMAND
#
#   start           write configs and myid files, start every server, wait until all serve
#   stop            stop every server (SIGTERM, then SIGKILL after 10 s)
#   status          per server: id, client port, pid and Mode from the srvr four-letter word
#   kill ID         kill -9 server ID
#   stop-peer ID    stop server ID (SIGTERM, then SIGKILL after 10 s)
#   start-peer ID   start server ID again (same config and data)
#   restart ID      stop-peer ID, then start-peer ID
#
#   --apache        run Apache ZooKeeper instead of rzk (recorded by start; later commands on
#                   the same directory use what start recorded)
#   --size N        servers in the ensemble (default 3; recorded by start)
#   --dir DIR       work directory (default $RZK_ENSEMBLE_DIR, else data/ensemble)
#
# Layout: DIR/ensemble.env (flavor and size), and per server DIR/ID/ holding zoo.cfg, myid,
# the data (version-2), pid and log. Server ID listens for clients on 127.0.0.1 port
# CLIENT_BASE+ID-1, for followers on QUORUM_BASE+ID-1 and for votes on ELECTION_BASE+ID-1
# (environment RZK_ENSEMBLE_{CLIENT,QUORUM,ELECTION}_BASE, defaults 2181, 2888, 3888: for a size
# of 3 the same settings as conf/zoo-ensemble-{1,2,3}.cfg).
#
# Data survives stop and start (remove DIR for a fresh ensemble). RZK_SERVER overrides the rzk
# binary (default target/release/rzk-server, built with `cargo build --release --bins` if
# missing); JVM_OPTS the JVM options for Apache (default -Xmx1g); RUST_LOG rzk's log level
# (default info).
set -euo pipefail
cd "$(dirname "$0")/.."

flavor=
size=
dir=${RZK_ENSEMBLE_DIR:-data/ensemble}
while [ $# -gt 0 ]; do
    case "$1" in
        --apache) flavor=apache; shift ;;
        --rzk) flavor=rzk; shift ;;
        --size) size=$2; shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
command=${1:-}
peer=${2:-}
usage() {
    echo "usage: $0 [--apache] [--size N] [--dir DIR] start|stop|status|kill ID|restart ID|stop-peer ID|start-peer ID" >&2
    exit 2
}
[ -n "$command" ] || usage

client_base=${RZK_ENSEMBLE_CLIENT_BASE:-2181}
quorum_base=${RZK_ENSEMBLE_QUORUM_BASE:-2888}
election_base=${RZK_ENSEMBLE_ELECTION_BASE:-3888}
binary=${RZK_SERVER:-target/release/rzk-server}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
envfile="$dir/ensemble.env"

# What start recorded wins for every later command (an explicit different choice is an error).
if [ "$command" != start ] && [ -f "$envfile" ]; then
    recorded_flavor=$(sed -n 's/^flavor=//p' "$envfile")
    recorded_size=$(sed -n 's/^size=//p' "$envfile")
    if [ -n "$flavor" ] && [ "$flavor" != "$recorded_flavor" ]; then
        echo "$dir runs a $recorded_flavor ensemble, not $flavor" >&2
        exit 2
    fi
    if [ -n "$size" ] && [ "$size" != "$recorded_size" ]; then
        echo "$dir runs an ensemble of $recorded_size, not $size" >&2
        exit 2
    fi
    flavor=$recorded_flavor
    size=$recorded_size
fi
flavor=${flavor:-rzk}
size=${size:-3}
case "$size" in '' | *[!0-9]* | 0) echo "--size must be a positive number" >&2; exit 2 ;; esac

client_port() { echo $((client_base + $1 - 1)); }

check_id() {
    case "$1" in '' | *[!0-9]*) usage ;; esac
    if [ "$1" -lt 1 ] || [ "$1" -gt "$size" ]; then
        echo "no server $1 in an ensemble of $size" >&2
        exit 2
    fi
}

four_letter() { # port word -> the answer (empty when nothing answers within 2 s)
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf %s '$2' >&3 && cat <&3" \
        2>/dev/null || true
}

mode() { # id -> leader|follower|observer|standalone, or nothing when not serving
    four_letter "$(client_port "$1")" srvr | sed -n 's/^Mode: //p'
}

running_pid() { # id -> pid of the live server (fails when not running)
    local pid_file="$dir/$1/pid" pid
    [ -f "$pid_file" ] || return 1
    pid=$(cat "$pid_file")
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

write_config() { # id
    local id=$1 d="$dir/$1" n
    mkdir -p "$d"
    echo "$id" >"$d/myid"
    {
        echo "# Written by scripts/ensemble.sh: server $id of $size ($flavor)."
        echo "tickTime=2000"
        echo "initLimit=10"
        echo "syncLimit=5"
        echo "dataDir=$d"
        echo "clientPort=$(client_port "$id")"
        echo "clientPortAddress=127.0.0.1"
        for n in $(seq 1 "$size"); do
            echo "server.$n=127.0.0.1:$((quorum_base + n - 1)):$((election_base + n - 1));127.0.0.1:$(client_port "$n")"
        done
        echo "maxClientCnxns=0"
        echo "4lw.commands.whitelist=srvr,stat,mntr,conf,ruok"
        echo "admin.enableServer=false"
    } >"$d/zoo.cfg"
}

launch() { # id: start the server in the background, record its pid
    local id=$1 d="$dir/$1"
    if [ "$flavor" = apache ]; then
        # shellcheck disable=SC2086 # JVM_OPTS is a list of options
        nohup java ${JVM_OPTS:--Xmx1g} -Dzookeeper.admin.enableServer=false \
            -Dzookeeper.log.dir="$d" -Dorg.slf4j.simpleLogger.showDateTime=true \
            -cp "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar" \
            org.apache.zookeeper.server.quorum.QuorumPeerMain "$d/zoo.cfg" \
            >>"$d/log" 2>&1 </dev/null &
    else
        RUST_LOG=${RUST_LOG:-info} nohup "$binary" "$d/zoo.cfg" >>"$d/log" 2>&1 </dev/null &
    fi
    echo $! >"$d/pid"
    disown $! # no "Killed" job report when the script takes it down again
}

start_peer() { # id
    local id=$1 pid
    if pid=$(running_pid "$id"); then
        echo "server $id already running as process $pid"
        return 0
    fi
    [ -f "$dir/$id/zoo.cfg" ] || write_config "$id"
    launch "$id"
    echo "server $id started as process $(cat "$dir/$id/pid") (log $dir/$id/log)"
}

stop_peer() { # id [signal]
    local id=$1 signal=${2:-TERM} pid
    if ! pid=$(running_pid "$id"); then
        echo "server $id not running"
        rm -f "$dir/$id/pid"
        return 0
    fi
    kill -s "$signal" "$pid" 2>/dev/null || true
    if [ "$signal" = TERM ]; then
        for _ in $(seq 1 200); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    rm -f "$dir/$id/pid"
    echo "server $id (process $pid) stopped with SIG$signal"
}

status() {
    local id pid m
    printf '%-4s %-12s %-8s %s\n' id client-port pid mode
    for id in $(seq 1 "$size"); do
        if pid=$(running_pid "$id"); then
            m=$(mode "$id")
            printf '%-4s %-12s %-8s %s\n' "$id" "$(client_port "$id")" "$pid" "${m:-not serving}"
        else
            printf '%-4s %-12s %-8s %s\n' "$id" "$(client_port "$id")" - "not running"
        fi
    done
}

start() {
    local id pid
    started=()
    for id in $(seq 1 "$size"); do
        if pid=$(running_pid "$id"); then
            echo "server $id already runs (process $pid) in $dir; stop the ensemble first" >&2
            exit 1
        fi
    done
    if [ "$flavor" = apache ]; then
        if [ ! -f /usr/share/java/zookeeper.jar ]; then
            echo "Apache ZooKeeper is not installed (apt-get install zookeeper)" >&2
            exit 1
        fi
    elif [ ! -x "$binary" ]; then
        cargo build --release --bins --quiet
    fi
    printf 'flavor=%s\nsize=%s\n' "$flavor" "$size" >"$envfile"
    # On any failure below, take down what this run started.
    trap 'for id in "${started[@]}"; do stop_peer "$id" KILL >/dev/null; done' EXIT
    for id in $(seq 1 "$size"); do
        rm -f "$dir/$id/zoo.cfg"
        write_config "$id"
        launch "$id"
        started+=("$id")
    done
    local deadline=$((SECONDS + 60)) serving
    while :; do
        serving=0
        for id in $(seq 1 "$size"); do
            if ! running_pid "$id" >/dev/null; then
                echo "server $id exited; the end of $dir/$id/log:" >&2
                tail -n 20 "$dir/$id/log" >&2
                exit 1
            fi
            [ -n "$(mode "$id")" ] && serving=$((serving + 1))
        done
        [ "$serving" -eq "$size" ] && break
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "the ensemble did not serve within 60 s (logs in $dir/*/log):" >&2
            status >&2
            exit 1
        fi
        sleep 0.2
    done
    trap - EXIT
    echo "$flavor ensemble of $size serving; connect string $(connect_string)"
    status
}

connect_string() {
    local id out=
    for id in $(seq 1 "$size"); do out="${out:+$out,}127.0.0.1:$(client_port "$id")"; done
    echo "$out"
}

case "$command" in
    start) start ;;
    stop) for id in $(seq 1 "$size"); do stop_peer "$id"; done ;;
    status) status ;;
    kill) check_id "$peer"; stop_peer "$peer" KILL ;;
    stop-peer) check_id "$peer"; stop_peer "$peer" ;;
    start-peer) check_id "$peer"; start_peer "$peer" ;;
    restart) check_id "$peer"; stop_peer "$peer"; start_peer "$peer" ;;
    connect-string) connect_string ;;
    *) usage ;;
esac
