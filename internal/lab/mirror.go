package lab

import (
	"errors"
	"os"
	"strings"
)

// Mirror is the Debian mirror this machine's apt uses; PGFLEET_LAB_MIRROR
// overrides it.
func Mirror() (string, error) {
	if m := os.Getenv("PGFLEET_LAB_MIRROR"); m != "" {
		return m, nil
	}
	if b, err := os.ReadFile("/etc/apt/sources.list.d/debian.sources"); err == nil {
		var uri string
		for _, para := range strings.Split(string(b), "\n\n") {
			var u, suites string
			for _, line := range strings.Split(para, "\n") {
				if v, ok := strings.CutPrefix(line, "URIs:"); ok {
					u = strings.Fields(v + " ")[0]
				}
				if v, ok := strings.CutPrefix(line, "Suites:"); ok {
					suites = v
				}
			}
			if u != "" && !strings.Contains(suites, "security") {
				uri = u
				break
			}
		}
		if uri != "" {
			return uri, nil
		}
	}
	if b, err := os.ReadFile("/etc/apt/sources.list"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && f[0] == "deb" && !strings.Contains(line, "security") {
				u := f[1]
				if strings.HasPrefix(u, "[") { // deb [opts] URI suite
					for i, w := range f {
						if strings.HasSuffix(w, "]") && i+1 < len(f) {
							u = f[i+1]
							break
						}
					}
				}
				return u, nil
			}
		}
	}
	return "", errors.New("lab: cannot find the Debian mirror this machine's apt uses; set PGFLEET_LAB_MIRROR")
}
