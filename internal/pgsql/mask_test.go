package pgsql

import (
	"strings"
	"testing"
)

func TestMaskPasswords(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"host=x password=s3cret", "host=x password=********"},
		{"host=x password=s3cret port=5432", "host=x password=******** port=5432"},
		{"host=x PASSWORD = s3cret", "host=x PASSWORD = ********"},
		{"password='s3 cret' host=x", "password=******** host=x"},
		{`password='s3\'cret' host=x`, "password=******** host=x"},
		{"sslpassword=s3cret", "sslpassword=********"},
		{"primary_conninfo = 'host=x password=s3cret'", "primary_conninfo = 'host=x password=********'"},
		{"primary_conninfo = 'host=x password=''s3 cret'' port=1'", "primary_conninfo = 'host=x password=******** port=1'"},
		{`primary_conninfo = 'host=x password=\'s3 cret\' port=1'`, "primary_conninfo = 'host=x password=******** port=1'"},
		{"-primary_conninfo = 'password=s3cret'\n+# none\n password=s3x2\n", "-primary_conninfo = 'password=********'\n+# none\n password=********\n"},
		{"primary_conninfo = 'postgresql://rep:s3cret@db1:5432/postgres'", "primary_conninfo = 'postgresql://rep:********@db1:5432/postgres'"},
		{"passfile=/var/lib/postgresql/.pgpass host=x", "passfile=/var/lib/postgresql/.pgpass host=x"},
		{"password=", "password="},
		{"no secret here", "no secret here"},
	} {
		got := MaskPasswords(tc.in)
		if got != tc.want {
			t.Errorf("MaskPasswords(%q)\n= %q\nwant %q", tc.in, got, tc.want)
		}
		if strings.Contains(got, "s3") {
			t.Errorf("MaskPasswords(%q) = %q shows the password", tc.in, got)
		}
	}
}
