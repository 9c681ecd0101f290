# The real node beside the control plane: containerd + runc + CNI (Debian's packages), and
# kubelet, kube-proxy and kube-scheduler from the same build as kube-apiserver. Sourced by
# tests/infra/{up,down,status} after lib.sh; it defines functions and starts nothing by itself.
#
# The pod network is a Linux bridge that exists only inside this machine: ferry0, 10.244.0.1/24,
# no masquerade and no forwarding. A pod has a route to the bridge and to the Service range
# (through the host, where kube-proxy's rules turn ClusterIPs into addresses on the bridge), and
# no default route: it reaches the host's addresses on the bridge (the API server, MariaDB,
# Kafka) and nothing else. Nothing is pulled from a registry: containerd runs
# with a proxy that is a closed local port, and every image it runs is imported with ctr.

NODE_NAME=ferry-node
POD_BRIDGE=ferry0
POD_SUBNET=10.244.0.0/24
POD_GATEWAY=10.244.0.1 # the host on the pod network: where pods find the API server and services
SERVICE_SUBNET=10.0.0.0/24
NODE_DIR=$STATE_DIR/node
CONTAINERD_SOCK=$NODE_DIR/containerd/containerd.sock
CONTAINERD_STATE=/run/ferry-containerd
PAUSE_IMAGE=ferry.local/pause:3.10.1
IMAGES_DIR=$CACHE_DIR/images
NODE_IMAGES=(pause ferry-operator ferry-worker python-base) # built by tests/infra/build-images
NODE_PACKAGES=(containerd runc buildah mmdebstrap containernetworking-plugins iptables conntrack)

ctr_node() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }
crictl_node() { "$CRICTL_BIN/crictl" --runtime-endpoint "unix://$CONTAINERD_SOCK" --timeout 60s "$@"; }

ensure_node_packages() {
  local missing=()
  command -v containerd >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  command -v buildah >/dev/null || missing+=(buildah)
  command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
  [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v conntrack >/dev/null || missing+=(conntrack)
  [ ${#missing[@]} -eq 0 ] && return
  [ "$(id -u)" = 0 ] || die "the node needs ${missing[*]}: apt-get install ${NODE_PACKAGES[*]}"
  log "installing ${missing[*]} from Debian's packages"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# ---------------------------------------------------------------- certificates

# sign_client_cert NAME SUBJECT: a client certificate from the test CA (kubelet, kube-proxy, ...).
sign_client_cert() {
  local name=$1 subject=$2
  openssl req -newkey rsa:2048 -nodes -subj "$subject" -keyout "$PKI/$name.key" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -out "$PKI/$name.crt" 2>/dev/null
}

# component_kubeconfig NAME: a kubeconfig for $PKI/NAME.{crt,key} at $NODE_DIR/NAME.kubeconfig.
component_kubeconfig() {
  local name=$1 file=$NODE_DIR/$1.kubeconfig
  "$K8S_BIN/kubectl" config --kubeconfig="$file" set-cluster ferry-test \
    --server="https://127.0.0.1:$APISERVER_PORT" --certificate-authority="$PKI/ca.crt" --embed-certs >/dev/null
  "$K8S_BIN/kubectl" config --kubeconfig="$file" set-credentials "$name" \
    --client-certificate="$PKI/$name.crt" --client-key="$PKI/$name.key" --embed-certs >/dev/null
  "$K8S_BIN/kubectl" config --kubeconfig="$file" set-context default --cluster=ferry-test --user="$name" >/dev/null
  "$K8S_BIN/kubectl" config --kubeconfig="$file" use-context default >/dev/null
}

# The identities Kubernetes' default RBAC and the Node authorizer expect: nothing is in
# system:masters except the admin and the API server's own client for kubelets.
ensure_node_pki() {
  [ -f "$NODE_DIR/kubelet.kubeconfig" ] && return
  log "generating the node's certificates"
  mkdir -p "$NODE_DIR"
  sign_client_cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
  sign_client_cert kube-proxy "/CN=system:kube-proxy"
  sign_client_cert kube-scheduler "/CN=system:kube-scheduler"
  sign_client_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  # The kubelet's serving certificate, for the address the API server dials (logs, exec).
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$NODE_NAME" \
    -keyout "$PKI/kubelet-serving.key" -out "$PKI/kubelet-serving.csr" 2>/dev/null
  printf 'subjectAltName=IP:%s,DNS:%s\n' "$POD_GATEWAY" "$NODE_NAME" >"$PKI/kubelet-serving.ext"
  openssl x509 -req -in "$PKI/kubelet-serving.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -extfile "$PKI/kubelet-serving.ext" -out "$PKI/kubelet-serving.crt" 2>/dev/null
  for name in kubelet kube-proxy kube-scheduler; do component_kubeconfig "$name"; done
}

# ---------------------------------------------------------------- pod network

# The bridge is made before any service starts, so the API server, MariaDB and Kafka can
# listen on its address; the CNI bridge plugin then finds it and attaches pods to it.
ensure_pod_bridge() {
  [ "$(id -u)" = 0 ] || die "the pod network needs root (ip link add $POD_BRIDGE type bridge)"
  if ! ip link show "$POD_BRIDGE" >/dev/null 2>&1; then
    ip link add "$POD_BRIDGE" type bridge
  fi
  local addresses
  addresses=$(ip -o -4 addr show dev "$POD_BRIDGE")  # not piped into grep -q: pipefail + SIGPIPE
  [[ $addresses == *"inet $POD_GATEWAY/"* ]] || ip addr add "$POD_GATEWAY/24" dev "$POD_BRIDGE"
  ip link set "$POD_BRIDGE" up
}

write_cni_config() {
  mkdir -p "$NODE_DIR/cni" "$NODE_DIR/ipam"
  cat >"$NODE_DIR/cni/10-ferry-pods.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "ferry-pods",
  "plugins": [
    {
      "type": "bridge", "bridge": "$POD_BRIDGE", "isGateway": true, "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$NODE_DIR/ipam",
        "ranges": [[{"subnet": "$POD_SUBNET", "gateway": "$POD_GATEWAY"}]],
        "routes": [{"dst": "$SERVICE_SUBNET"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
}

# ---------------------------------------------------------------- containerd

start_containerd() {
  pid_alive "$STATE_DIR/containerd.pid" && return
  mkdir -p "$NODE_DIR/containerd"
  write_cni_config
  cat >"$NODE_DIR/containerd/config.toml" <<TOML
version = 2
root = "$NODE_DIR/containerd/root"
state = "$CONTAINERD_STATE"
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # This machine withholds CAP_SYS_RESOURCE even from root, so no process may lower its
  # oom_score_adj: containers keep containerd's (the kubelet's -998 for sandboxes would fail).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_DIR/cni"
TOML
  # The proxy is a closed local port: an image that was not imported fails to pull at once
  # (ErrImagePull), and no pull ever leaves this machine.
  HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY= \
    start_daemon containerd "$NODE_DIR/containerd.log" containerd --config "$NODE_DIR/containerd/config.toml"
  wait_for containerd 60 ctr_node version || die "containerd did not start: $NODE_DIR/containerd.log"
}

# import_images: the images tests/infra/build-images made, each imported again only when it
# was rebuilt (its key changed since the last import).
import_images() {
  local name key
  mkdir -p "$NODE_DIR/imported"
  for name in "${NODE_IMAGES[@]}"; do
    [ -f "$IMAGES_DIR/$name.key" ] || die "no $name image: run tests/infra/build-images"
    key=$(cat "$IMAGES_DIR/$name.key")
    [ "$(cat "$NODE_DIR/imported/$name" 2>/dev/null)" = "$key" ] && continue
    ctr_node images import "$IMAGES_DIR/$name.tar" >/dev/null || die "importing $name into containerd failed"
    echo "$key" >"$NODE_DIR/imported/$name"
    log "imported $name ($key) into containerd"
  done
}

# ---------------------------------------------------------------- kubelet, kube-proxy, scheduler

start_kubelet() {
  pid_alive "$STATE_DIR/kubelet.pid" && return
  mkdir -p "$NODE_DIR/kubelet" "$NODE_DIR/pod-logs"
  # Pods resolve nothing: their only name server is their own loopback, so a lookup fails at
  # once instead of leaving the machine. Everything they need is an address on the bridge.
  echo "nameserver 127.0.0.1" >"$NODE_DIR/resolv.conf"
  cat >"$NODE_DIR/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
# cgroup v1 hierarchies are mounted here and systemd is not PID 1. Kubernetes 1.34 still runs
# on cgroup v1 when failCgroupV1 is false (its default until 1.35); said explicitly.
cgroupDriver: cgroupfs
failCgroupV1: false
address: $POD_GATEWAY
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
resolvConf: $NODE_DIR/resolv.conf
podLogsDir: $NODE_DIR/pod-logs
failSwapOn: false
serializeImagePulls: false
# A shared test machine: evict only when it is really out of room, never collect the
# imported images (they cannot be pulled back).
evictionHard: {memory.available: "200Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
shutdownGracePeriod: 0s
YAML
  start_daemon kubelet "$NODE_DIR/kubelet.log" "$K8S_BIN/kubelet" \
    --config "$NODE_DIR/kubelet.yaml" --kubeconfig "$NODE_DIR/kubelet.kubeconfig" \
    --root-dir "$NODE_DIR/kubelet" --hostname-override "$NODE_NAME" --node-ip "$POD_GATEWAY" --v=1
  wait_for "node $NODE_NAME Ready" 120 node_ready || die "the node did not become Ready: $NODE_DIR/kubelet.log"
}

node_ready() {
  [ "$(kubectl_admin get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

start_kube_proxy() {
  pid_alive "$STATE_DIR/kube-proxy.pid" && return
  cat >"$NODE_DIR/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $NODE_DIR/kube-proxy.kubeconfig}
mode: iptables
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_SUBNET
nodePortAddresses: ["$POD_GATEWAY/32"]
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
iptables: {localhostNodePorts: false}
conntrack: {maxPerCore: 0}  # leave the host's conntrack table size alone
YAML
  start_daemon kube-proxy "$NODE_DIR/kube-proxy.log" "$K8S_BIN/kube-proxy" \
    --config "$NODE_DIR/kube-proxy.yaml" --v=1
  wait_for kube-proxy 60 curl -fsS "http://127.0.0.1:10256/healthz" \
    || die "kube-proxy did not become healthy: $NODE_DIR/kube-proxy.log"
}

start_scheduler() {
  pid_alive "$STATE_DIR/kube-scheduler.pid" && return
  start_daemon kube-scheduler "$NODE_DIR/kube-scheduler.log" "$K8S_BIN/kube-scheduler" \
    --kubeconfig "$NODE_DIR/kube-scheduler.kubeconfig" --leader-elect=false \
    --bind-address 127.0.0.1 --secure-port 10259 --v=1
  wait_for kube-scheduler 60 port_open 10259 || die "kube-scheduler did not start: $NODE_DIR/kube-scheduler.log"
}

# ---------------------------------------------------------------- teardown

# stop_node: pods first (through the CRI, so CNI releases their addresses and rules), then the
# daemons, then whatever is still mounted under the node's directories, the bridge and
# kube-proxy's rules. Ends only processes started here (pid files) and their containers.
stop_node() {
  # Only an environment that ran the node tears it down: a second environment (its own
  # FERRY_TESTENV_STATE, MariaDB and Kafka only) must not take the shared bridge away.
  [ -d "$NODE_DIR/containerd" ] || return 0
  stop_daemon kubelet
  if pid_alive "$STATE_DIR/containerd.pid"; then
    [ -x "$CRICTL_BIN/crictl" ] && crictl_node rmp --force --all >/dev/null 2>&1 || true
    local id
    for id in $(ctr_node tasks ls -q 2>/dev/null); do ctr_node tasks kill -s KILL "$id" >/dev/null 2>&1 || true; done
    sleep 1
    for id in $(ctr_node tasks ls -q 2>/dev/null); do ctr_node tasks delete -f "$id" >/dev/null 2>&1 || true; done
    for id in $(ctr_node containers ls -q 2>/dev/null); do ctr_node containers delete "$id" >/dev/null 2>&1 || true; done
  fi
  stop_daemon kube-scheduler
  stop_daemon containerd
  if pid_alive "$STATE_DIR/kube-proxy.pid"; then
    stop_daemon kube-proxy
  fi
  [ -x "$K8S_BIN/kube-proxy" ] && "$K8S_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
  local mnt
  for mnt in $(awk -v a="$NODE_DIR/" -v b="$CONTAINERD_STATE/" 'index($2, a) == 1 || index($2, b) == 1 { print $2 }' /proc/mounts | sort -r); do
    umount -l "$mnt" 2>/dev/null || true
  done
  for mnt in /run/netns/cni-*; do
    [ -e "$mnt" ] || continue
    umount "$mnt" 2>/dev/null || true
    rm -f "$mnt"
  done
  rm -rf "$CONTAINERD_STATE" "$NODE_DIR/ipam"
  if ip link show "$POD_BRIDGE" >/dev/null 2>&1; then
    ip link delete "$POD_BRIDGE"
    log "removed the pod network ($POD_BRIDGE)"
  fi
}
