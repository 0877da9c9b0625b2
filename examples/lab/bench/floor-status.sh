#!/usr/bin/env bash
# The floor a no-op `pgfleet up` and `pgfleet status` are measured against:
# the least a careful person would type to see the replication state of
# every host over ssh — one query to each host, all at once: whether it is
# in recovery, its WAL position, and what it streams to or from. No
# comparison with anything, no files read, no lock.
#
# usage: floor-status.sh KEY KNOWN_HOSTS HOST_ADDR...
set -euo pipefail
key=$1 known=$2
shift 2
run() { local h=$1; shift; ssh -i "$key" -o UserKnownHostsFile="$known" -o StrictHostKeyChecking=yes -o BatchMode=yes "ops@$h" "$@"; }

pids=()
for h in "$@"; do
    run "$h" "sudo -u postgres psql -XAtc \"SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END,
        (SELECT string_agg(application_name || ' ' || state, ',') FROM pg_stat_replication),
        (SELECT status FROM pg_stat_wal_receiver)\"" >/dev/null &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
