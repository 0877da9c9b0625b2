package inventory

import "strings"

// PGDG is where the clusters of repository pgdg install PostgreSQL from:
// the PostgreSQL project's repository, or a mirror of it that the
// inventory's pgdg section names (a LAN without the internet).
type PGDG struct {
	// URL is the mirror's address, http:// or https://, laid out as the
	// project's repository (dists/CODENAME-pgdg/main); "" for the
	// project's own.
	URL string
	// KeyFile is, on this machine, the key the mirror's indexes are
	// signed with, ASCII-armored, absolute; "" for the project's key,
	// which pgfleet carries and which a plain copy of the repository keeps.
	KeyFile string
}

var pgdgSchema = schema{
	what: "pgdg repository settings, such as {url: http://apt.example.lan/pgdg}",
	keys: []string{"url", "key_file"},
}

func (d *decoder) pgdg(e entry) PGDG {
	f, _ := d.fields(e.value, e.path, pgdgSchema)
	return PGDG{
		URL:     d.checked(f, "url", checkRepositoryURL).v,
		KeyFile: d.localPathAt(f, "key_file", "is empty: write the path of the key the mirror signs with (ASCII-armored), or remove the key to trust the PostgreSQL project's").v,
	}
}

// checkRepositoryURL says what is wrong with an apt repository's address,
// which goes into a line of an apt source file.
func checkRepositoryURL(s string) string {
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		return "must be the repository's address, beginning with http:// or https://, not " + quoteOrEmpty(s)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == '[' || r == ']' || r == 0x7f }) {
		return "holds a space, a bracket or a control character, which an apt source line cannot: " + quoteOrEmpty(s)
	}
	return ""
}

// checkPGDG warns about a pgdg section that no cluster uses.
func (d *decoder) checkPGDG(inv *Inventory, e entry) {
	if e.keyN == nil {
		return // no pgdg section
	}
	for _, c := range inv.Clusters {
		if c.Postgres.Repository == RepositoryPGDG {
			return
		}
	}
	d.warnf(e.keyN, e.path, "no cluster installs from the pgdg repository (postgres.repository: pgdg): this section is not used")
}
