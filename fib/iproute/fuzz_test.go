package iproute

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fibguard/fibguard/fib"
)

// addSeeds adds the golden files matching pattern, and extra inputs, to the
// fuzz corpus; add turns one input into the fuzz target's arguments.
func addSeeds(f *testing.F, pattern string, extra []string, add func([]byte)) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*", pattern))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		add(b)
	}
	for _, s := range extra {
		add([]byte(s))
	}
}

// linksFor returns a device for every name the routes use, so that a model
// of the routes alone can be validated.
func linksFor(routes []fib.Route) []fib.Link {
	var links []fib.Link
	seen := map[string]bool{}
	for _, r := range routes {
		for _, nh := range r.NextHops {
			if nh.Link != "" && !seen[nh.Link] {
				seen[nh.Link] = true
				links = append(links, fib.Link{Index: len(links) + 1, Name: nh.Link, Kind: fib.KindOther})
			}
		}
	}
	return links
}

func familyOf(v6 bool) fib.Family {
	if v6 {
		return fib.V6
	}
	return fib.V4
}

// FuzzParseRoutes checks that any input either fails or gives routes of the
// family that Model.Validate accepts.
func FuzzParseRoutes(f *testing.F) {
	addSeeds(f, "routes*.json", []string{
		`[{"dst":"default","dev":"a"},{"dst":"default","pref":"medium","dev":"lo"}]`,
		`[{"dst":"10.0.0.0/8","nexthops":[{"gateway":"10.0.0.1","dev":"a","weight":3,"flags":["dead"]}]}]`,
		`[{"dst":"10.0.0.0/8","via":{"family":"inet6","host":"fe80::1"},"dev":"a"}]`,
	}, func(b []byte) {
		f.Add(b, false)
		f.Add(b, true)
	})
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		family := familyOf(v6)
		routes, err := ParseRoutes(b, family)
		if err != nil {
			return
		}
		for _, r := range routes {
			if r.Family != family || fib.FamilyOf(r.Dst.Addr()) != family || r.Dst != r.Dst.Masked() {
				t.Errorf("route %s of family %s: wrong family or unmasked", &r, family)
			}
		}
		m := fib.FromState(fib.State{Links: linksFor(routes), Routes: routes})
		if err := m.Validate(); err != nil {
			t.Errorf("parsed routes do not validate: %v", err)
		}
	})
}

// FuzzParseRules checks that any input either fails or gives rules of the
// family that Model.Validate accepts.
func FuzzParseRules(f *testing.F) {
	addSeeds(f, "rules*.json", []string{
		`[{"priority":5,"goto":9},{"priority":9,"nop":null}]`,
		`[{"priority":5,"src":"0","srclen":3,"sport_start":1,"sport_end":9,"table":"7"}]`,
	}, func(b []byte) {
		f.Add(b, false)
		f.Add(b, true)
	})
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		family := familyOf(v6)
		rules, err := ParseRules(b, family)
		if err != nil {
			return
		}
		var checked []fib.Rule
		for _, r := range rules {
			if r.Family != family {
				t.Errorf("rule %s of family %s", &r, family)
			}
			if r.Action == fib.ActionGoto && r.Goto <= r.Priority {
				t.Errorf("rule %s: backward goto", &r)
			}
			if r.SuppressPrefixLen < -1 || r.SuppressIfGroup < -1 {
				t.Errorf("rule %s: bad suppressor", &r)
			}
			// Model.Validate does not yet know that an l3mdev rule
			// looks up a table chosen at lookup time.
			if r.L3MDev && r.Table == fib.TableUnspec {
				continue
			}
			checked = append(checked, r)
		}
		m := fib.FromState(fib.State{Rules: checked})
		if err := m.Validate(); err != nil {
			t.Errorf("parsed rules do not validate: %v", err)
		}
	})
}

// FuzzParseAddrs checks that any input either fails or gives devices and
// addresses that Model.Validate accepts.
func FuzzParseAddrs(f *testing.F) {
	addSeeds(f, "*s.json", []string{
		`[{"ifindex":1,"ifname":"a","master":"b","addr_info":[{"family":"inet","local":"10.0.0.1","address":"10.0.0.2","prefixlen":32,"secondary":true}]},{"ifindex":2,"ifname":"b","linkinfo":{"info_kind":"vrf","info_data":{"table":9}}}]`,
	}, func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, b []byte) {
		links, addrs, err := ParseAddrs(b)
		if err != nil {
			return
		}
		m := fib.FromState(fib.State{Links: links, Addrs: addrs})
		if err := m.Validate(); err != nil {
			t.Errorf("parsed devices and addresses do not validate: %v", err)
		}
		for _, l := range links {
			if l.Master != 0 {
				if _, ok := m.LinkByIndex(l.Master); !ok || l.Master == l.Index {
					t.Errorf("link %s: master %d unknown", l.Name, l.Master)
				}
			}
		}
		for _, a := range addrs {
			if a.Peer.IsValid() && (fib.FamilyOf(a.Peer.Addr()) != fib.FamilyOf(a.Prefix.Addr()) || a.Peer.Bits() != a.Prefix.Bits()) {
				t.Errorf("address %s: peer %s does not match", a.Prefix, a.Peer)
			}
		}
	})
}
