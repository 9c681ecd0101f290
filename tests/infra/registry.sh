# The schema registry of format avro's tests (sourced by tests/infra/{up,down,status} after
# lib.sh): Apicurio Registry, whose Confluent-compatible API is /apis/ccompat/v7, from its
# Quarkus distribution on Maven Central (io.apicurio:apicurio-registry-app, classifier all,
# a tar.gz of the runner jar and its lib/), run with the JDK. In-memory storage (H2, its
# default): every start is an empty registry. Its API requires HTTP basic auth (Quarkus's
# embedded users), so tests prove the credentials a worker sends. Functions only; nothing
# starts by itself.

REGISTRY_PORT=${FERRY_REGISTRY_PORT:-18081}
REGISTRY_HOME=$CACHE_DIR/apicurio-registry-$APICURIO_VERSION
REGISTRY_JAR=$REGISTRY_HOME/apicurio-registry-app-$APICURIO_VERSION-runner.jar
REGISTRY_URL=http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7
REGISTRY_USER=ferry-registry
# A throwaway credential for a throwaway local server; it only lives in the env file.
REGISTRY_PASSWORD=${FERRY_REGISTRY_PASSWORD:-ferry-registry-test-pw}

ensure_registry() {
  [ -f "$REGISTRY_JAR" ] && return
  log "fetching Apicurio Registry $APICURIO_VERSION from Maven Central"
  local tmp=$REGISTRY_HOME.tmp
  rm -rf "$tmp" && mkdir -p "$tmp"
  mvn -q -B dependency:copy -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" \
    -DoutputDirectory="$tmp" -Dmdep.overWriteReleases=true
  tar xzf "$tmp/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz" -C "$tmp"
  rm -f "$tmp"/*.tar.gz
  rm -rf "$REGISTRY_HOME" && mv "$tmp" "$REGISTRY_HOME"
}

registry_ready() { curl -fsS -m 5 -u "$REGISTRY_USER:$REGISTRY_PASSWORD" "$REGISTRY_URL/subjects" >/dev/null; }

# start_registry: launch the JVM and return at once (it takes a while on 2 cores);
# wait_registry waits for its API, so other services start meanwhile.
start_registry() {
  pid_alive "$STATE_DIR/registry.pid" && return
  mkdir -p "$STATE_DIR/registry"
  start_daemon registry "$STATE_DIR/registry/registry.log" java -Xms64m -Xmx384m \
    -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$REGISTRY_PORT" \
    -Dquarkus.log.level=WARN -Dquarkus.http.access-log.enabled=false \
    -Dquarkus.http.auth.basic=true -Dquarkus.security.users.embedded.enabled=true \
    -Dquarkus.security.users.embedded.plain-text=true \
    "-Dquarkus.security.users.embedded.users.$REGISTRY_USER=$REGISTRY_PASSWORD" \
    "-Dquarkus.http.auth.permission.registry.paths=/apis/*" \
    -Dquarkus.http.auth.permission.registry.policy=authenticated \
    -jar "$REGISTRY_JAR"
}

wait_registry() {
  wait_for "schema registry (Apicurio $APICURIO_VERSION)" 240 registry_ready \
    || die "the schema registry did not start: $STATE_DIR/registry/registry.log"
}
