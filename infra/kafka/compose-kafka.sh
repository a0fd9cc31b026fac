#!/bin/sh
# The compose Kafka node (apache/kafka image), secured: SASL/SCRAM-SHA-512 on every client listener,
# StandardAuthorizer, nothing allowed without an ACL. Mounted into the `kafka` service of compose.yaml.
#
#   - every KAFKA_* variable becomes one property (KAFKA_LOG_DIRS -> log.dirs), as the image's own launcher
#     maps them; the properties that carry the admin's password are added here, from files, never from env;
#   - the admin (super user) comes from $MEDKIOSK_KAFKA_ADMIN_DIR/{username,password}, written by the one-shot
#     `kafka-users` service; the broker authenticates to itself with SCRAM as the admin (inter-broker
#     listener) and to its controller with SASL/PLAIN (KRaft controllers cannot use SCRAM);
#   - the log dir is formatted once, with the admin's SCRAM credential (`--add-scram`): every other user is
#     created later by `medkiosk acls apply --create-users` (the `acls` service), as the admin;
#   - $KAFKA_CLIENT_PROPERTIES gets the admin's client settings, for the healthcheck's Kafka tools.
set -eu
umask 077

creds=${MEDKIOSK_KAFKA_ADMIN_DIR:-/run/kafka}
bin=${KAFKA_BIN:-/opt/kafka/bin}
props=${KAFKA_PROPERTIES_FILE:-/tmp/kafka/server.properties}
client=${KAFKA_CLIENT_PROPERTIES:-/tmp/kafka/client.properties}
user=$(cat "$creds/username")
password=$(cat "$creds/password")
case "$user$password" in
    *[\"\\,=\[\]\ ]* | "$user" | "$password")
        echo "compose-kafka: the admin's username and password may not be empty nor hold quotes, backslashes, spaces, , = [ ]" >&2
        exit 1
        ;;
esac
: "${CLUSTER_ID:?CLUSTER_ID must be set (kafka-storage format --cluster-id)}"
: "${KAFKA_INTER_BROKER_LISTENER_NAME:?}" "${KAFKA_CONTROLLER_LISTENER_NAMES:?}"

mkdir -p "$(dirname "$props")" "$(dirname "$client")"
: >"$props"
env | sort | while IFS='=' read -r name value; do
    case "$name" in
        # The Kafka scripts' own settings, not broker properties.
        KAFKA_BIN | KAFKA_PROPERTIES_FILE | KAFKA_CLIENT_PROPERTIES | KAFKA_HOME | KAFKA_VERSION | KAFKA_HEAP_OPTS | \
            KAFKA_OPTS | KAFKA_JVM_PERFORMANCE_OPTS | KAFKA_LOG4J_OPTS | KAFKA_GC_LOG_OPTS | KAFKA_JMX_OPTS | \
            KAFKA_DEBUG | KAFKA_LOG4J_CONFIG) ;;
        KAFKA_*) printf '%s=%s\n' "$(printf '%s' "${name#KAFKA_}" | tr 'A-Z_' 'a-z.')" "$value" >>"$props" ;;
    esac
done
inter=$(printf '%s' "$KAFKA_INTER_BROKER_LISTENER_NAME" | tr 'A-Z' 'a-z')
controller=$(printf '%s' "$KAFKA_CONTROLLER_LISTENER_NAMES" | tr 'A-Z' 'a-z')
scram="org.apache.kafka.common.security.scram.ScramLoginModule required username=\"$user\" password=\"$password\";"
cat >>"$props" <<EOF
super.users=User:$user
listener.name.$controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="$user" password="$password" user_$user="$password";
EOF
# Every other listener serves SCRAM and needs a JAAS entry; the inter-broker one also logs in as the admin.
for listener in $(printf '%s' "${KAFKA_LISTENER_SECURITY_PROTOCOL_MAP:?}" | tr ',' '\n' | cut -d: -f1 | tr 'A-Z' 'a-z'); do
    case "$listener" in
        "$controller") ;;
        "$inter") printf 'listener.name.%s.scram-sha-512.sasl.jaas.config=%s\n' "$listener" "$scram" >>"$props" ;;
        *) printf 'listener.name.%s.scram-sha-512.sasl.jaas.config=%s\n' "$listener" \
            "org.apache.kafka.common.security.scram.ScramLoginModule required;" >>"$props" ;;
    esac
done
cat >"$client" <<EOF
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=$scram
EOF

"$bin/kafka-storage.sh" format --ignore-formatted --cluster-id "$CLUSTER_ID" -c "$props" \
    --add-scram "SCRAM-SHA-512=[name=$user,password=$password]"
exec "$bin/kafka-server-start.sh" "$props"
