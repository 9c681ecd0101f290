# Shared by tests/infra/{up,down,status}: paths, ports and one start/stop/check trio per service.
# Source it; it defines functions and variables and starts nothing by itself.

INFRA_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$INFRA_DIR/versions.env"

CACHE_DIR=${FERRY_TESTENV_CACHE:-$HOME/.cache/ferry-testenv}
STATE_DIR=${FERRY_TESTENV_STATE:-$HOME/.local/state/ferry-testenv}
ENV_FILE=$STATE_DIR/env

ETCD_PORT=${FERRY_ETCD_PORT:-23790}
ETCD_PEER_PORT=${FERRY_ETCD_PEER_PORT:-23800}
APISERVER_PORT=${FERRY_APISERVER_PORT:-16443}
MYSQL_PORT=${FERRY_MYSQL_PORT:-13306}
KAFKA_PORT=${FERRY_KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${FERRY_KAFKA_CONTROLLER_PORT:-19093}
KAFKA_POD_PORT=${FERRY_KAFKA_POD_PORT:-19094} # the listener pods use, on the pod network

K8S_BIN=$CACHE_DIR/k8s-$K8S_VERSION/bin
ETCD_BIN=$CACHE_DIR/etcd-$ETCD_VERSION/bin
CRICTL_BIN=$CACHE_DIR/crictl-$CRICTL_VERSION/bin
KAFKA_LIBS=$CACHE_DIR/kafka-$KAFKA_VERSION/libs
PKI=$STATE_DIR/pki
KUBECONFIG_FILE=$STATE_DIR/kubeconfig
MYSQL_USER=ferry         # replication grants only, as a Connector's user would have
MYSQL_ADMIN_USER=ferry_admin  # creates and drops the tests' databases
# A throwaway credential for a throwaway local server; it only lives in the env file.
MYSQL_PASSWORD=${FERRY_MYSQL_PASSWORD:-ferry-test-pw}
MYSQL_SOCKET=$STATE_DIR/mariadb/mysqld.sock

log() { printf '[infra %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# pid_alive PIDFILE: the process is running and is still ours (after a reboot a pid may
# belong to something else), recognised by a word of its command line.
pid_alive() {
  local pid
  [ -f "$1" ] && pid=$(cat "$1") && kill -0 "$pid" 2>/dev/null || return 1
  case $(basename "$1" .pid) in
    mariadb) grep -qa mariadbd "/proc/$pid/cmdline" ;;
    kafka) grep -qa kafka.Kafka "/proc/$pid/cmdline" ;;
    *) grep -qa "$(basename "$1" .pid)" "/proc/$pid/cmdline" ;;
  esac
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for DESCRIPTION SECONDS COMMAND...: poll COMMAND until it succeeds.
wait_for() {
  local what=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.5
  done
  log "$what is up"
}

# start_daemon NAME LOGFILE COMMAND...: run COMMAND detached, its pid in $STATE_DIR/NAME.pid.
start_daemon() {
  local name=$1 logfile=$2
  shift 2
  setsid nohup "$@" >>"$logfile" 2>&1 </dev/null &
  echo $! >"$STATE_DIR/$name.pid"
}

stop_daemon() {
  local name=$1 pidfile=$STATE_DIR/$1.pid
  if pid_alive "$pidfile"; then
    local pid
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
    log "stopped $name"
  fi
  rm -f "$pidfile"
}

kubectl_admin() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

mysql_root() { mariadb --protocol=socket --socket="$MYSQL_SOCKET" -uroot "$@"; }

kafka_java() {
  java -Xms256m -Xmx768m -XX:+UseG1GC -Dslf4j.internal.verbosity=WARN -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -cp "$KAFKA_LIBS/*" "$@"
}
