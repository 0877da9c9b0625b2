#!/usr/bin/env bash
# The floor pgfleet is measured against: the least a careful person would
# type to build the same thing over ssh — install PostgreSQL on every host
# at once, configure the primary, create the role and slots, clone the
# replicas in parallel with pg_basebackup, start them and wait until the
# primary sees them all streaming. No checks, no idempotence, no safety.
# With UPSTREAMS="REPLICA_ADDR=UPSTREAM_ADDR ...", those replicas are
# cascaded: cloned from, and streaming from, their upstream (a replica
# without one), with their slot there, once the upstream streams.
#
# usage: [UPSTREAMS=...] floor.sh KEY KNOWN_HOSTS VERSION PASSWORD PRIMARY_ADDR REPLICA_ADDR...
set -euo pipefail
key=$1 known=$2 v=$3 pw=$4 primary=$5
shift 5
replicas=("$@")
declare -A upstream=()
for pair in ${UPSTREAMS:-}; do upstream[${pair%%=*}]=${pair#*=}; done
run() { local h=$1; shift; ssh -i "$key" -o UserKnownHostsFile="$known" -o StrictHostKeyChecking=yes -o BatchMode=yes "ops@$h" "$@"; }

for h in "$primary" "${replicas[@]}"; do
    run "$h" "sudo mkdir -p /etc/postgresql-common/createcluster.d &&
        echo 'create_main_cluster = false' | sudo tee /etc/postgresql-common/createcluster.d/floor.conf >/dev/null &&
        sudo apt-get update -q >/dev/null &&
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql-$v >/dev/null 2>&1" &
done
wait

hba=""
for r in "${replicas[@]}"; do hba+="host replication replicator $r/32 scram-sha-256\n"; done
# Each clone streams its WAL beside the copy: two senders a replica while
# they clone, as many as pgfleet sets (PostgreSQL's default of 10 is too
# few for 10 replicas); a standby needs as many as its primary.
senders=$(( 2 * ${#replicas[@]} + 4 ))
[ "$senders" -ge 10 ] || senders=10
run "$primary" "sudo pg_createcluster $v main -- --data-checksums >/dev/null &&
    printf \"listen_addresses = '*'\nmax_wal_senders = $senders\nmax_replication_slots = $senders\n\" | sudo tee /etc/postgresql/$v/main/conf.d/floor.conf >/dev/null &&
    printf '$hba' | sudo tee -a /etc/postgresql/$v/main/pg_hba.conf >/dev/null &&
    sudo pg_ctlcluster $v main start"
slots=""
for i in "${!replicas[@]}"; do
    [ -n "${upstream[${replicas[$i]}]:-}" ] || slots+="SELECT pg_create_physical_replication_slot('r$i', true);"
done
echo "CREATE ROLE replicator LOGIN REPLICATION PASSWORD '$pw'; $slots" | run "$primary" "sudo -u postgres psql -qX >/dev/null"

# clone REPLICA_INDEX SOURCE: clone a replica from SOURCE, with its slot
# there, and start it.
clone() {
    local i=$1 src=$2 r=${replicas[$1]}
    echo "$src:5432:replication:replicator:$pw" | run "$r" "sudo -u postgres sh -c 'cat > ~/.pgpass && chmod 600 ~/.pgpass' &&
        sudo pg_createcluster $v main >/dev/null && sudo rm -rf /var/lib/postgresql/$v/main &&
        printf \"listen_addresses = '*'\nmax_wal_senders = $senders\nmax_replication_slots = $senders\n\" | sudo tee /etc/postgresql/$v/main/conf.d/floor.conf >/dev/null &&
        printf '$hba' | sudo tee -a /etc/postgresql/$v/main/pg_hba.conf >/dev/null &&
        sudo -u postgres pg_basebackup -h $src -U replicator -D /var/lib/postgresql/$v/main -X stream -S r$i -R -c fast -d 'application_name=r$i' &&
        sudo pg_ctlcluster $v main start"
}
# wait_streaming HOST N: until HOST sends to N streaming standbys.
wait_streaming() {
    until [ "$(run "$1" "sudo -u postgres psql -XAtc \"SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'\"")" = "$2" ]; do
        sleep 0.2
    done
}

clones=()
direct=0
for i in "${!replicas[@]}"; do
    [ -z "${upstream[${replicas[$i]}]:-}" ] || continue
    clone "$i" "$primary" &
    clones+=($!)
    direct=$((direct + 1))
done
for p in "${clones[@]}"; do wait "$p"; done # a failed clone fails the floor
wait_streaming "$primary" "$direct"

# The cascaded replicas, from their upstreams, which stream now.
clones=()
declare -A downstreams=()
for i in "${!replicas[@]}"; do
    u=${upstream[${replicas[$i]}]:-}
    [ -n "$u" ] || continue
    echo "SELECT pg_create_physical_replication_slot('r$i', true);" | run "$u" "sudo -u postgres psql -qX >/dev/null"
    clone "$i" "$u" &
    clones+=($!)
    downstreams[$u]=$(( ${downstreams[$u]:-0} + 1 ))
done
for p in "${clones[@]}"; do wait "$p"; done
for u in "${!downstreams[@]}"; do wait_streaming "$u" "${downstreams[$u]}"; done
