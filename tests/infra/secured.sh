# Secured listeners beside the plaintext ones (sourced by tests/infra/{up,status} after lib.sh):
# a test CA and certificates (openssl, keytool), TLS on MariaDB with a user that must use it
# (REQUIRE SSL), and two more Kafka listeners: SASL_SSL (SCRAM-SHA-512 and PLAIN users) and
# SSL with client certificates required (mTLS). Functions only; nothing starts by itself.

KAFKA_SASL_PORT=${FERRY_KAFKA_SASL_PORT:-19096}  # (19094 is the pods' plaintext listener)
KAFKA_MTLS_PORT=${FERRY_KAFKA_MTLS_PORT:-19097}
# The same two on the pod network's gateway, for workers running as pods on the node.
KAFKA_POD_SASL_PORT=${FERRY_KAFKA_POD_SASL_PORT:-19098}
KAFKA_POD_MTLS_PORT=${FERRY_KAFKA_POD_MTLS_PORT:-19099}
PKI_SECURED=$STATE_DIR/pki-secured
MYSQL_TLS_USER=ferry_tls      # REQUIRE SSL, the grants of $MYSQL_USER
KAFKA_SCRAM_USER=ferry-scram  # SCRAM-SHA-512 on the SASL_SSL listener
KAFKA_PLAIN_USER=ferry-plain  # PLAIN on the SASL_SSL listener
# Throwaway credentials for throwaway local servers; they only live in the env file.
KAFKA_SCRAM_PASSWORD=${FERRY_KAFKA_SCRAM_PASSWORD:-ferry-scram-test-pw}
KAFKA_PLAIN_PASSWORD=${FERRY_KAFKA_PLAIN_PASSWORD:-ferry-plain-test-pw}
KEYSTORE_PASSWORD=ferry-keystore-pw

# _secured_cert NAME CA SUBJECT [SAN]: NAME.key and NAME.crt signed by CA (CA.key, CA.crt).
_secured_cert() {
  local name=$1 ca=$2 subject=$3 san=${4:-}
  openssl req -new -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" \
    -subj "$subject" 2>/dev/null
  if [ -n "$san" ]; then
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$san" >"$name.ext"
  else
    printf 'extendedKeyUsage=clientAuth\n' >"$name.ext"
  fi
  openssl x509 -req -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

# ensure_secured_pki: the test CA, a second CA that signed nothing here (the "wrong CA" of the
# tests), a server certificate for 127.0.0.1/localhost and the pod network's gateway (MariaDB
# also listens there for pods), a client certificate, and Kafka's
# PKCS12 keystore and truststore. Idempotent: kept across restarts.
ensure_secured_pki() {
  [ -f "$PKI_SECURED/kafka.truststore.p12" ] && return
  log "generating the secured listeners' certificates in $PKI_SECURED"
  rm -rf "$PKI_SECURED"
  mkdir -p "$PKI_SECURED"
  (
    cd "$PKI_SECURED"
    for ca in ca other-ca; do
      openssl req -x509 -newkey rsa:2048 -nodes -keyout "$ca.key" -out "$ca.crt" -days 3650 \
        -subj "/CN=ferry-test-$ca" 2>/dev/null
    done
    _secured_cert server ca "/CN=localhost" "IP:127.0.0.1,DNS:localhost${POD_GATEWAY:+,IP:$POD_GATEWAY}"
    _secured_cert client ca "/CN=ferry-client"
    openssl pkcs12 -export -in server.crt -inkey server.key -certfile ca.crt -name server \
      -passout "pass:$KEYSTORE_PASSWORD" -out kafka.keystore.p12
    keytool -importcert -noprompt -alias ferry-test-ca -file ca.crt -storetype PKCS12 \
      -keystore kafka.truststore.p12 -storepass "$KEYSTORE_PASSWORD" >/dev/null 2>&1
    chmod 600 ./*.key
  ) || die "generating certificates in $PKI_SECURED failed"
}

# secured_mariadb_args: mariadbd options that turn TLS on (plaintext stays allowed).
secured_mariadb_args() {
  printf -- '--ssl-ca=%s --ssl-cert=%s --ssl-key=%s ' \
    "$PKI_SECURED/ca.crt" "$PKI_SECURED/server.crt" "$PKI_SECURED/server.key"
}

# secured_mariadb_users: $MYSQL_TLS_USER, refused without TLS.
secured_mariadb_users() {
  mysql_root <<SQL
CREATE USER IF NOT EXISTS '$MYSQL_TLS_USER'@'%' IDENTIFIED BY '$MYSQL_PASSWORD' REQUIRE SSL;
ALTER USER '$MYSQL_TLS_USER'@'%' IDENTIFIED BY '$MYSQL_PASSWORD' REQUIRE SSL;
GRANT SELECT, RELOAD, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '$MYSQL_TLS_USER'@'%';
FLUSH PRIVILEGES;
SQL
}

# The extra Kafka listeners, for listeners=, advertised.listeners= and the protocol map (the
# PODS_ ones only when the pod network's gateway is known: node.sh sourced before).
secured_kafka_listeners() {
  printf ',SASL_SSL://127.0.0.1:%s,SSL://127.0.0.1:%s' "$KAFKA_SASL_PORT" "$KAFKA_MTLS_PORT"
  [ -z "${POD_GATEWAY:-}" ] || printf ',PODS_SASL_SSL://%s:%s,PODS_SSL://%s:%s' \
    "$POD_GATEWAY" "$KAFKA_POD_SASL_PORT" "$POD_GATEWAY" "$KAFKA_POD_MTLS_PORT"
}
secured_kafka_protocols() {
  printf ',SASL_SSL:SASL_SSL,SSL:SSL'
  [ -z "${POD_GATEWAY:-}" ] || printf ',PODS_SASL_SSL:SASL_SSL,PODS_SSL:SSL'
}

# secured_kafka_properties: appended to server.properties.
secured_kafka_properties() {
  cat <<PROPS
ssl.keystore.type=PKCS12
ssl.keystore.location=$PKI_SECURED/kafka.keystore.p12
ssl.keystore.password=$KEYSTORE_PASSWORD
ssl.key.password=$KEYSTORE_PASSWORD
ssl.truststore.type=PKCS12
ssl.truststore.location=$PKI_SECURED/kafka.truststore.p12
ssl.truststore.password=$KEYSTORE_PASSWORD
sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
PROPS
  local name
  for name in ssl pods_ssl; do
    echo "listener.name.$name.ssl.client.auth=required"
  done
  for name in sasl_ssl pods_sasl_ssl; do
    cat <<PROPS
listener.name.$name.sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.$name.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.$name.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$KAFKA_PLAIN_USER="$KAFKA_PLAIN_PASSWORD";
PROPS
  done
}

# secured_kafka_users: the SCRAM credential, stored in the cluster's metadata (idempotent).
secured_kafka_users() {
  wait_for "kafka SASL_SSL listener" 60 port_open "$KAFKA_SASL_PORT" \
    || die "the SASL_SSL listener did not open: $STATE_DIR/kafka/server.log"
  kafka_java kafka.admin.ConfigCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" --alter \
    --add-config "SCRAM-SHA-512=[password=$KAFKA_SCRAM_PASSWORD]" \
    --entity-type users --entity-name "$KAFKA_SCRAM_USER" >"$STATE_DIR/kafka/scram.log" 2>&1 \
    || die "adding the SCRAM user failed: $STATE_DIR/kafka/scram.log"
}

# secured_env: lines for the env file.
secured_env() {
  cat <<ENV
export FERRY_TLS_CA_FILE=$PKI_SECURED/ca.crt
export FERRY_TLS_OTHER_CA_FILE=$PKI_SECURED/other-ca.crt
export FERRY_TLS_CLIENT_CERT_FILE=$PKI_SECURED/client.crt
export FERRY_TLS_CLIENT_KEY_FILE=$PKI_SECURED/client.key
export FERRY_MYSQL_TLS_USER=$MYSQL_TLS_USER
export FERRY_KAFKA_SASL_BOOTSTRAP=127.0.0.1:$KAFKA_SASL_PORT
export FERRY_KAFKA_MTLS_BOOTSTRAP=127.0.0.1:$KAFKA_MTLS_PORT
export FERRY_POD_KAFKA_SASL_BOOTSTRAP=${POD_GATEWAY:-127.0.0.1}:$KAFKA_POD_SASL_PORT
export FERRY_POD_KAFKA_MTLS_BOOTSTRAP=${POD_GATEWAY:-127.0.0.1}:$KAFKA_POD_MTLS_PORT
export FERRY_KAFKA_SCRAM_USER=$KAFKA_SCRAM_USER
export FERRY_KAFKA_SCRAM_PASSWORD=$KAFKA_SCRAM_PASSWORD
export FERRY_KAFKA_PLAIN_USER=$KAFKA_PLAIN_USER
export FERRY_KAFKA_PLAIN_PASSWORD=$KAFKA_PLAIN_PASSWORD
ENV
}
