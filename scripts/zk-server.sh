#!/usr/bin/env bash
# Like Apache's zkServer.sh, for rzk: start, stop, status or restart a server in the
# background. The pid file is <dataDir>/zookeeper_server.pid (as zkServer.sh writes it) and the
# log goes to <dataDir>/rzk-server.log.
#
#   scripts/zk-server.sh start|stop|status|restart [CONFIG]     (default conf/zoo.cfg)
#
# RZK_SERVER overrides the binary (default target/release/rzk-server, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

command=${1:-}
config=${2:-conf/zoo.cfg}
binary=${RZK_SERVER:-target/release/rzk-server}

config_value() { # key -> value from the config file (last one wins, as in Java properties)
    sed --quiet --regexp-extended "s/^[[:space:]]*$1[[:space:]]*[=:][[:space:]]*(.*[^[:space:]])[[:space:]]*$/\1/p" \
        "$config" | tail --lines=1
}

[ -f "$config" ] || { echo "no config file $config" >&2; exit 2; }
data_dir=$(config_value dataDir)
client_port=$(config_value clientPort)
client_address=$(config_value clientPortAddress)
[ -n "$data_dir" ] || { echo "$config has no dataDir" >&2; exit 2; }
pid_file="$data_dir/zookeeper_server.pid"
log_file="$data_dir/rzk-server.log"

running_pid() {
    [ -f "$pid_file" ] || return 1
    local pid
    pid=$(cat "$pid_file")
    kill -0 "$pid" 2>/dev/null && echo "$pid"
}

four_letter() { # word -> the server's answer
    python3 - "${client_address:-127.0.0.1}" "${client_port:-2181}" "$1" <<'EOF' 2>/dev/null
import socket, sys
host = sys.argv[1] if sys.argv[1] not in ("0.0.0.0", "::") else "127.0.0.1"
s = socket.create_connection((host, int(sys.argv[2])), timeout=2)
s.sendall(sys.argv[3].encode())
out = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    out += chunk
print(out.decode(), end="")
EOF
}

start() {
    if pid=$(running_pid); then
        echo "rzk already running as process $pid."
        return 0
    fi
    [ -x "$binary" ] || cargo build --release --bin rzk-server --quiet
    mkdir -p "$data_dir"
    echo -n "Starting rzk ... "
    nohup "$binary" "$config" >>"$log_file" 2>&1 &
    echo $! >"$pid_file"
    for _ in $(seq 1 200); do
        if four_letter srvr | grep --quiet '^Mode:'; then
            echo STARTED
            return 0
        fi
        if ! running_pid >/dev/null; then
            echo "FAILED TO START (see $log_file)"
            return 1
        fi
        sleep 0.05
    done
    echo "FAILED TO START within 10 s (see $log_file)"
    return 1
}

stop() {
    echo -n "Stopping rzk ... "
    if pid=$(running_pid); then
        kill "$pid"
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$pid_file"
        echo STOPPED
    else
        echo "no rzk to stop (could not find process)"
    fi
}

status() {
    local answer
    answer=$(four_letter srvr || true)
    if grep --quiet '^Mode:' <<<"$answer"; then
        echo "Client port found: ${client_port:-2181}. Client address: ${client_address:-localhost}."
        grep '^Mode:' <<<"$answer"
    else
        echo "Error contacting service. It is probably not running."
        return 1
    fi
}

case "$command" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    restart) stop; start ;;
    *) echo "usage: $0 start|stop|status|restart [CONFIG]" >&2; exit 2 ;;
esac
