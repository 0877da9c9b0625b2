# pgfleet facts probe: read-only. Runs as root under sh.
# Arguments: VERSION PORT DATADIR CONFDIR REPLUSER
V="$1"; P="$2"; D="$3"; C="$4"; U="$5"
if [ -r /etc/os-release ]; then . /etc/os-release; fi
echo "os_id=${ID:-}"
echo "os_version=${VERSION_ID:-}"
echo "os_codename=${VERSION_CODENAME:-}"
if command -v apt-get >/dev/null 2>&1; then echo "pkg=apt"; fi
if [ -d /run/systemd/system ]; then echo "init=systemd"; else echo "init=other"; fi
for f in /usr/lib/postgresql/*/bin/postgres; do
    [ -x "$f" ] || continue
    d="${f%/bin/postgres}"; echo "pg_installed=${d##*/}"
done
[ -f /etc/postgresql-common/createcluster.d/pgfleet.conf ] && echo "createcluster_conf=1"
echo "postgres_home=$(getent passwd postgres | cut -d: -f6)"
[ -e "$D" ] && echo "data_exists=1"
[ -f "$D/PG_VERSION" ] && echo "data_version=$(cat "$D/PG_VERSION")"
[ -n "$(ls -A "$D" 2>/dev/null)" ] && echo "data_nonempty=1"
[ -f "$D/standby.signal" ] && echo "standby_signal=1"
if [ -f "$D/postgresql.auto.conf" ]; then
    echo "auto_conf=$(base64 -w0 < "$D/postgresql.auto.conf")"
fi
p="$D"; while [ ! -e "$p" ] && [ "$p" != / ]; do p="$(dirname "$p")"; done
df -Pk "$p" | awk 'NR==2 { print "disk_free_kb=" $4 }'
for f in postgresql.conf pg_hba.conf pg_ident.conf start.conf; do
    [ -f "$C/$f" ] && echo "file.$f=$(base64 -w0 < "$C/$f")"
done
h="$(getent passwd postgres | cut -d: -f6)"
[ -n "$h" ] && [ -f "$h/.pgpass" ] && echo "pgpass=$(base64 -w0 < "$h/.pgpass")"
if [ -S "/var/run/postgresql/.s.PGSQL.$P" ] && [ -f "$D/postmaster.pid" ]; then
    if out="$(runuser -u postgres -- psql -X -q -A -t -p "$P" -h /var/run/postgresql -d postgres -v ON_ERROR_STOP=1 -v u="$U" <<'SQL'
SELECT 'running=1';
SELECT 'server_version=' || current_setting('server_version_num');
SELECT 'recovery=' || pg_is_in_recovery();
SELECT 'data_checksums=' || current_setting('data_checksums');
SELECT 'role=' || rolreplication || ':' || rolcanlogin || ':' || coalesce(rolpassword, '') FROM pg_authid WHERE rolname = :'u';
SELECT 'slot=' || slot_name || ':' || active FROM pg_replication_slots WHERE slot_type = 'physical';
SELECT 'wal_receiver=' || status || ':' || coalesce(sender_host, '') || ':' || coalesce(sender_port::text, '') FROM pg_stat_wal_receiver;
SELECT 'pending_restart=' || name FROM pg_settings WHERE pending_restart;
SELECT 'db_size=' || sum(pg_database_size(oid))::bigint FROM pg_database;
SELECT 'user_databases=' || count(*) FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1');
SELECT 'replica=' || coalesce(application_name, '') || ':' || coalesce(host(client_addr), '') || ':' || state FROM pg_stat_replication;
SQL
)"; then
        printf '%s\n' "$out" | sed 's/^/sql./'
    else
        echo "sql_error=1"
    fi
fi
exit 0
