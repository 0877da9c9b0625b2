# pgfleet state probe: read-only. Runs as root under sh and prints one JSON
# document (decoded into State). Every program started costs time on a busy
# host, so it uses shell builtins where it can: stat, tar, base64, runuser
# and psql when the server runs; pg_controldata (through runuser) when it
# does not answer, and then sort and od on a standby's pg_wal; a second
# stat only when data was moved aside.
# Arguments: DATADIR CONFDIR BINDIR SOCKETDIR PORT VERSIONS REPLUSER UNIT
# APTFILES..., where VERSIONS is a glob of every installed version's postgres
# binary, with its one * where the version is, UNIT the cluster's systemd
# unit, and APTFILES the apt files pgfleet writes (the PGDG source entry and
# key), read back with the configuration.
D="$1"; C="$2"; B="$3"; S="$4"; P="$5"; G="$6"; U="$7"; N="$8"; shift 8; A="$*"

# js prints its argument as a JSON string; one with control characters,
# which no name pgfleet reads has, prints as "".
js() {
	s=$1; o=
	case $s in *[[:cntrl:]]*) printf '""'; return ;; esac
	while :; do
		case $s in *[\\\"]*) ;; *) break ;; esac
		pre=${s%%[\\\"]*}; rest=${s#"$pre"?}; c=${s#"$pre"}; c=${c%"$rest"}
		o="$o$pre\\$c"; s=$rest
	done
	printf '"%s%s"' "$o" "$s"
}

if [ -r /etc/os-release ]; then . /etc/os-release; fi
printf '{"os_id":'; js "${ID:-}"
printf ',"os_version":'; js "${VERSION_ID:-}"
printf ',"os_codename":'; js "${VERSION_CODENAME:-}"
if command -v apt-get >/dev/null 2>&1; then printf ',"pkg":"apt"'; fi

gpre=${G%%\**}; gsuf=${G#*\*}
printf ',"installed":['; sep=; pkgs=
for f in $G; do
	[ -x "$f" ] || continue
	v=${f#"$gpre"}; v=${v%"$gsuf"}
	case $v in ''|*[!0-9]*) continue ;; esac
	printf '%s%s' "$sep" "$v"; sep=,
	pkgs="$pkgs postgresql-$v"
done
printf ']'
# The installed server packages' versions, which tell where each came
# from: one dpkg-query, only where PostgreSQL is installed.
out=
if [ -n "$pkgs" ]; then out="$(dpkg-query -W -f '${db:Status-Abbrev} ${Package} ${Version}\n' $pkgs 2>/dev/null)"; fi
if [ -n "$out" ]; then
	printf ',"packages":{'; sep=
	while read -r st name ver; do
		case $st in ?n*|?c*|'') continue ;; esac
		printf '%s' "$sep"; js "$name"; printf ':'; js "$ver"; sep=,
	done <<EOF
$out
EOF
	printf '}'
fi

h=""
while IFS=: read -r name _ _ _ _ home _; do
	if [ "$name" = postgres ]; then h="$home"; fi
done < /etc/passwd
printf ',"postgres_home":'; js "$h"

dv=0
if [ -f "$D/PG_VERSION" ]; then read -r dv < "$D/PG_VERSION"; fi
case $dv in ''|*[!0-9]*) dv=0 ;; esac
printf ',"data_version":%s' "$dv"
for x in "$D"/* "$D"/.[!.]* "$D"/..?*; do
	if [ -e "$x" ]; then printf ',"data_nonempty":true'; break; fi
done
[ -f "$D/standby.signal" ] && printf ',"standby_signal":true'
# A data directory that is a symbolic link, or a file system's mount point:
# moving either aside would not move the data (or not work).
if [ -L "$D" ]; then printf ',"data_link":'; js "$(readlink -f -- "$D" 2>/dev/null)"; fi
if [ -d "$D" ] && [ ! -L "$D" ] && dev="$(stat -c '%d' -- "$D" "$D/.." 2>/dev/null)"; then
	set -- $dev
	[ $# -eq 2 ] && [ "$1" != "$2" ] && printf ',"data_mountpoint":true'
fi
# A clone that began and did not finish leaves its marker beside the data.
[ -e "$D.pgfleet-cloning" ] && printf ',"clone_incomplete":true'

p="$D"; while [ ! -e "$p" ] && [ -n "$p" ] && [ "$p" != / ]; do p="${p%/*}"; done
[ -n "$p" ] || p=/
if fs="$(stat -f -c '%a %S' "$p" 2>/dev/null)"; then
	set -- $fs
	printf ',"disk_free_kb":%s' "$(( $1 * $2 / 1024 ))"
fi

# Data moved aside (DATADIR.pgfleet-*), with its mtime; not its size,
# which would take a walk of every file.
set --
for x in "$D".pgfleet-*; do
	[ -e "$x" ] || continue
	case $x in *[[:cntrl:]]*) continue ;; esac
	set -- "$@" "$x"
done
printf ',"aside":['
if [ $# -gt 0 ] && out="$(stat -c '%Y %n' -- "$@" 2>/dev/null)"; then
	sep=
	while read -r t n; do
		printf '%s{"path":' "$sep"; js "$n"; printf ',"mtime":%s}' "$t"; sep=,
	done <<EOF
$out
EOF
fi
printf ']'

set --
for f in "$C/postgresql.conf" "$C/pg_hba.conf" "$C/pg_ident.conf" "$C/start.conf" "$D/postgresql.auto.conf" "$h/.pgpass" \
	"$C/tls/server.crt" "$C/tls/ca.crt" $A; do
	[ -f "$f" ] && set -- "$@" "$f"
done
if [ $# -gt 0 ]; then printf ',"files":"'; tar -cPf - -- "$@" | base64 -w0; printf '"'; fi
# The TLS key is compared by its hash: it is not read back.
if [ -f "$C/tls/server.key" ] && k="$(sha256sum < "$C/tls/server.key")"; then
	printf ',"tls_key_sha256":"%s"' "${k%% *}"
fi

# A live postmaster: the pid in the first line of postmaster.pid is a
# running postgres process, whether or not it answers SQL.
pid=0
if [ -f "$D/postmaster.pid" ] && read -r pp < "$D/postmaster.pid"; then
	case $pp in
	''|*[!0-9]*) ;;
	*)
		if kill -0 "$pp" 2>/dev/null; then
			comm=postgres
			[ -r "/proc/$pp/comm" ] && read -r comm < "/proc/$pp/comm"
			case $comm in postgres*|postmaster*) pid=$pp ;; esac
		fi ;;
	esac
fi
printf ',"postmaster_pid":%s' "$pid"

# systemd, where it is PID 1: how it sees the cluster's unit (active, failed,
# ...) and whether the unit, or postgresql.service, which starts the clusters
# whose start.conf says auto, is enabled. One systemctl for both units.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	ua=; uf=; sf=; n=0
	out="$(systemctl show -p ActiveState,UnitFileState -- "$N" postgresql.service 2>/dev/null)"
	while IFS='=' read -r k v; do
		case $k in
		'') n=$((n + 1)) ;;
		ActiveState) [ $n -eq 0 ] && ua=$v ;;
		UnitFileState) if [ $n -eq 0 ]; then uf=$v; else sf=$v; fi ;;
		esac
	done <<EOF
$out
EOF
	printf ',"systemd":{"unit":'; js "$N"; printf ',"active":'; js "$ua"
	printf ',"unit_file":'; js "$uf"; printf ',"service_file":'; js "$sf"; printf '}'
fi

answered=
nl='
'
if [ "$pid" != 0 ] && [ -S "$S/.s.PGSQL.$P" ]; then
	psql=$B/psql
	[ -x "$psql" ] || psql=psql
	out="$(PGCONNECT_TIMEOUT=5 runuser -u postgres -- "$psql" -X -q -A -t -p "$P" -h "$S" -d postgres -v ON_ERROR_STOP=1 -v u="$U" 2>&1 <<'SQL'
WITH l AS (SELECT r.rec, CASE WHEN r.rec THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END AS lsn
  FROM (SELECT pg_is_in_recovery() AS rec) r)
-- 'version' comes first: the probe tells the answer from warnings by it.
SELECT json_build_object(
  'version', split_part(current_setting('server_version'), ' ', 1),
  'in_recovery', l.rec,
  'system_id', (SELECT system_identifier::text FROM pg_control_system()),
  'timeline', CASE WHEN l.rec
    THEN coalesce((SELECT received_tli FROM pg_stat_wal_receiver), (pg_control_checkpoint()).timeline_id)
    ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
  'lsn', l.lsn,
  'receive_lsn', CASE WHEN l.rec THEN pg_last_wal_receive_lsn() END,
  'replay_delay', CASE WHEN l.rec THEN
    CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
    ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END END,
  'replay_paused', CASE WHEN l.rec THEN pg_is_wal_replay_paused() ELSE false END,
  'role', (SELECT json_build_object('replication', rolreplication, 'login', rolcanlogin,
    'verifier', coalesce(rolpassword, ''),
    'superuser', rolsuper,
    'rewind', has_function_privilege(rolname, 'pg_catalog.pg_ls_dir(text, boolean, boolean)', 'EXECUTE')
      AND has_function_privilege(rolname, 'pg_catalog.pg_stat_file(text, boolean)', 'EXECUTE')
      AND has_function_privilege(rolname, 'pg_catalog.pg_read_binary_file(text)', 'EXECUTE')
      AND has_function_privilege(rolname, 'pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)', 'EXECUTE'))
    FROM pg_authid WHERE rolname = :'u'),
  'receiver', (SELECT json_build_object('status', status, 'sender_host', coalesce(sender_host, ''),
    'sender_port', coalesce(sender_port, 0), 'slot_name', coalesce(slot_name, '')) FROM pg_stat_wal_receiver),
  'replication', (SELECT coalesce(json_agg(json_build_object(
    'application_name', coalesce(application_name, ''), 'client_addr', coalesce(host(client_addr), ''),
    'state', coalesce(state, ''), 'sync_state', coalesce(sync_state, ''),
    'sent_lsn', coalesce(sent_lsn::text, ''), 'write_lsn', coalesce(write_lsn::text, ''),
    'flush_lsn', coalesce(flush_lsn::text, ''), 'replay_lsn', coalesce(replay_lsn::text, ''),
    'ssl', coalesce(s.ssl, false)) ORDER BY application_name), '[]'::json)
    FROM pg_stat_replication LEFT JOIN pg_stat_ssl s USING (pid)),
  'slots', (SELECT coalesce(json_agg(json_build_object(
    'name', slot_name, 'active', active, 'restart_lsn', coalesce(restart_lsn::text, ''),
    'wal_status', coalesce(to_jsonb(s)->>'wal_status', ''),
    'retained_bytes', pg_wal_lsn_diff(l.lsn, restart_lsn)::bigint) ORDER BY slot_name), '[]'::json)
    FROM pg_replication_slots s WHERE slot_type = 'physical'),
  'pending_restart', (SELECT coalesce(json_agg(name ORDER BY name), '[]'::json) FROM pg_settings WHERE pending_restart),
  'restart_params', (SELECT coalesce(json_agg(name ORDER BY name), '[]'::json) FROM pg_settings WHERE context = 'postmaster'),
  'oldest_wal', CASE WHEN NOT l.rec THEN (SELECT name FROM pg_ls_waldir()
    WHERE name ~ '^[0-9A-F]{24}$' ORDER BY substr(name, 9) LIMIT 1) END,
  'wal_segment_size', pg_size_bytes(current_setting('wal_segment_size')),
  'db_size', (SELECT sum(pg_database_size(oid))::bigint FROM pg_database),
  'user_databases', (SELECT count(*) FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1')),
  'data_checksums', current_setting('data_checksums')::bool,
  'wal_log_hints', current_setting('wal_log_hints')::bool,
  'max_replication_slots', current_setting('max_replication_slots')::int
) FROM l;
SQL
)"
	rc=$?
	# psql's stderr shares the capture: the server's warnings (PostgreSQL
	# 15 warns at every connection when a database's collation version is
	# not the system's, after a C library upgrade) come before the answer,
	# which psql prints last and which begins {"version" (json_build_object
	# keeps its keys' order). What precedes its last line that begins so is
	# the warnings; base64 starts only when there are some.
	w=; ok=
	if [ $rc -eq 0 ]; then
		case $out in
		'{"version"'*) ok=1 ;;
		*"$nl"'{"version"'*) ok=1; w=${out%"$nl"'{"version"'*}; out='{"version"'${out##*"$nl"'{"version"'} ;;
		esac
	fi
	if [ -n "$ok" ]; then
		printf ',"server":%s' "$out"; answered=1
		if [ -n "$w" ]; then printf ',"sql_warnings":"'; printf '%s' "$w" | base64 -w0; printf '"'; fi
	else
		printf ',"sql_exit":%s,"sql_error":"' "$rc"; printf '%s' "$out" | base64 -w0; printf '"'
	fi
fi

# The control file, when no server answered: pg_controldata of the data's
# own version reads it whether the server is up or down.
ctl="$gpre$dv${gsuf%/*}/pg_controldata"
if [ -z "$answered" ] && [ "$dv" != 0 ] && [ -x "$ctl" ] &&
	out="$(LC_ALL=C runuser -u postgres -- "$ctl" "$D" 2>/dev/null)"; then
	sid=; tli=; cst=; seg=; blk=; ckp=
	while IFS=: read -r k v; do
		v=${v#"${v%%[! ]*}"}
		case $k in
		"Database system identifier") sid=$v ;;
		"Latest checkpoint's TimeLineID") tli=$v ;;
		"Database cluster state") cst=$v ;;
		"Latest checkpoint location") ckp=$v ;;
		"Bytes per WAL segment") seg=$v ;;
		"WAL block size") blk=$v ;;
		esac
	done <<EOF
$out
EOF
	case $sid in ''|*[!0-9]*) sid= ;; esac
	case $tli in ''|*[!0-9]*) tli=0 ;; esac
	case $seg in ''|*[!0-9]*) seg=0 ;; esac
	case $blk in ''|*[!0-9]*) blk=0 ;; esac
	case $ckp in *[!0-9A-F/]*) ckp= ;; esac
	printf ',"control":{"system_id":"%s","timeline":%s,"wal_segment_size":%s,"checkpoint":"%s","state":' "$sid" "$tli" "$seg" "$ckp"; js "$cst"
	# A standby's WAL ends in the newest segment of its pg_wal whose first
	# page is that segment's: recycled and preallocated files, named for
	# segments to come, hold older WAL or zeros. What it must stream from
	# its primary begins there, or after it when its last page is written.
	if [ -f "$D/standby.signal" ] && [ "$seg" -gt 0 ] && [ "$blk" -gt 0 ]; then
		set --
		for f in "$D"/pg_wal/[0-9A-F]*; do
			n=${f##*/}
			case $n in *[!0-9A-F]*) continue ;; esac
			[ ${#n} -eq 24 ] && [ -f "$f" ] && set -- "$@" "$n"
		done
		if [ $# -gt 0 ]; then
			for n in $(printf '%s\n' "$@" | sort -r -k 1.9 | head -n 64); do
				a=${n#????????}; lo=${a#????????}; hi=${a%"$lo"}
				start=$(( 0x$hi * 4294967296 + 0x$lo * seg ))
				page=$(od -A n -t x8 -j 8 -N 8 -- "$D/pg_wal/$n" 2>/dev/null) || continue
				page=${page#"${page%%[! ]*}"}
				case $page in ''|*[!0-9a-f]*) continue ;; esac
				[ $((0x$page)) -eq "$start" ] || continue
				last=$(od -A n -t x8 -j $((seg - blk + 8)) -N 8 -- "$D/pg_wal/$n" 2>/dev/null)
				last=${last#"${last%%[! ]*}"}
				full=false
				case $last in ''|*[!0-9a-f]*) ;; *) [ $((0x$last)) -eq $((start + seg - blk)) ] && full=true ;; esac
				printf ',"last_wal":"%s","last_wal_full":%s' "$n" "$full"
				break
			done
		fi
	fi
	printf '}'
fi
printf '}\n'
exit 0
