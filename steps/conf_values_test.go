package steps

import "testing"

func TestAutoConfValue(t *testing.T) {
	conf := basebackupAutoConf("10.0.0.1", "5432", "h2")
	for _, tc := range []struct {
		name, conf, key, want string
	}{
		{"pg_basebackup's doubled quotes", conf, "primary_conninfo",
			"user=replicator passfile='/var/lib/postgresql/.pgpass' channel_binding=prefer host=10.0.0.1 port=5432 application_name=h2 sslmode=prefer sslcompression=0 sslcertmode=allow sslsni=1 ssl_min_protocol_version=TLSv1.2 gssencmode=prefer krbsrvname=postgres gssdelegation=0 target_session_attrs=any load_balance_hosts=disable"},
		{"second key", conf, "primary_slot_name", "h2"},
		{"missing", conf, "restore_command", ""},
		{"comment is not a setting", "# primary_conninfo = 'host=x'\n", "primary_conninfo", ""},
		{"prefix of another key", "primary_conninfo_x = 'a'\n", "primary_conninfo", ""},
		{"last one wins", "primary_conninfo = 'host=a'\nwork_mem = '4MB'\nprimary_conninfo = 'host=b'\n", "primary_conninfo", "host=b"},
		{"spaces in the value", "application_name = 'my app  x'\n", "application_name", "my app  x"},
		{"no spaces around =", "work_mem='64MB'\n", "work_mem", "64MB"},
		{"unquoted", "work_mem = 64MB\n", "work_mem", "64MB"},
		{"empty", "primary_conninfo = ''\n", "primary_conninfo", ""},
		{"doubled quote", "primary_conninfo = 'application_name=''it''''s'''\n", "primary_conninfo", "application_name='it''s'"},
		// PostgreSQL's configuration parser also takes \' for a quote and \\
		// for a backslash; ALTER SYSTEM and pg_basebackup -R double
		// backslashes when they write the file.
		{"backslash quote", `primary_conninfo = 'a\'b'` + "\n", "primary_conninfo", "a'b"},
		{"doubled backslash", `primary_conninfo = 'host=h application_name=''x\\''y'''` + "\n", "primary_conninfo", `host=h application_name='x\'y'`},
		{"CRLF", "work_mem = '8MB'\r\n", "work_mem", "8MB"},
	} {
		if got := autoConfValue(tc.conf, tc.key); got != tc.want {
			t.Errorf("%s: autoConfValue(%q) = %q, want %q", tc.name, tc.key, got, tc.want)
		}
	}
}

func TestConninfoValue(t *testing.T) {
	ci := "user=replicator passfile='/var/lib/postgresql/.pgpass' host=10.0.0.1 port=5433 application_name='my app'"
	for _, tc := range []struct {
		name, conninfo, key, want string
	}{
		{"plain", ci, "host", "10.0.0.1"},
		{"after a quoted value", ci, "port", "5433"},
		{"quoted", ci, "passfile", "/var/lib/postgresql/.pgpass"},
		{"quoted with a space, last", ci, "application_name", "my app"},
		{"missing", ci, "sslmode", ""},
		{"empty string", "", "host", ""},
		{"key is not a value", "application_name=host host=a", "host", "a"},
		{"quoted value holding key=value", "application_name='x host=evil' host=good", "host", "good"},
		{"spaces around =", "host = a  port =\t5432", "port", "5432"},
		{"backslash escapes", `application_name='it\'s a \\ test' host=h`, "application_name", `it's a \ test`},
		{"empty quoted", "host='' port=1", "host", ""},
		{"unterminated quote", "host='abc", "host", "abc"},
		{"IPv6", "host=fd00::1 port=5432", "host", "fd00::1"},
		// libpq keeps the last value of a keyword given twice.
		{"last one wins", "host=a port=5432 host=b", "host", "b"},
	} {
		if got := conninfoValue(tc.conninfo, tc.key); got != tc.want {
			t.Errorf("%s: conninfoValue(%q, %q) = %q, want %q", tc.name, tc.conninfo, tc.key, got, tc.want)
		}
	}
}
