# pgfleet facts probe: read-only. Runs as root under sh. Every program
# started costs time on a busy host, so it uses shell builtins where it can:
# five programs in all (stat, tar, base64, runuser, psql).
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
h=""
while IFS=: read -r name _ _ _ _ home _; do
    if [ "$name" = postgres ]; then h="$home"; fi
done < /etc/passwd
echo "postgres_home=$h"
[ -e "$D" ] && echo "data_exists=1"
if [ -f "$D/PG_VERSION" ]; then read -r dv < "$D/PG_VERSION"; echo "data_version=$dv"; fi
for x in "$D"/* "$D"/.[!.]* "$D"/..?*; do
    if [ -e "$x" ]; then echo "data_nonempty=1"; break; fi
done
[ -f "$D/standby.signal" ] && echo "standby_signal=1"
[ -e "$D.pgfleet-cloning" ] && echo "clone_incomplete=1"
p="$D"; while [ ! -e "$p" ] && [ -n "$p" ] && [ "$p" != / ]; do p="${p%/*}"; done
[ -n "$p" ] || p=/
if fs="$(stat -f -c '%a %S' "$p" 2>/dev/null)"; then
    set -- $fs
    echo "disk_free_kb=$(( $1 * $2 / 1024 ))"
fi
set --
for f in "$C/postgresql.conf" "$C/pg_hba.conf" "$C/pg_ident.conf" "$C/start.conf" "$D/postgresql.auto.conf" "$h/.pgpass"; do
    [ -f "$f" ] && set -- "$@" "$f"
done
[ $# -gt 0 ] && echo "files=$(tar -cPf - -- "$@" | base64 -w0)"
if [ -S "/var/run/postgresql/.s.PGSQL.$P" ] && [ -f "$D/postmaster.pid" ]; then
    psql=/usr/lib/postgresql/$V/bin/psql
    [ -x "$psql" ] || psql=psql
    if out="$(runuser -u postgres -- "$psql" -X -q -A -t -p "$P" -h /var/run/postgresql -d postgres -v ON_ERROR_STOP=1 -v u="$U" <<'SQL'
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
        printf '%s\n' "$out" | while IFS= read -r line; do echo "sql.$line"; done
    else
        echo "sql_error=1"
    fi
fi
exit 0
