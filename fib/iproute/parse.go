package iproute

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/fibguard/fibguard/fib"
)

// Dump holds the JSON outputs of one namespace, each as iproute2 printed it.
// Any of them may be empty, meaning it was not collected.
type Dump struct {
	// Links is `ip -j -d link show`.
	Links []byte
	// Addrs is `ip -j -d addr show`; without Links, the devices are taken
	// from it.
	Addrs []byte
	// Routes4 and Routes6 are `ip -j -d route show table all` and
	// `ip -j -d -6 route show table all`.
	Routes4, Routes6 []byte
	// Rules4 and Rules6 are `ip -j rule show` and `ip -j -6 rule show`.
	Rules4, Rules6 []byte
}

// Parse builds the model of the namespace the dump was taken from, and
// checks it with Model.Validate.
//
// The routes of each family come from the family's own dump, or from the
// other one if it is empty (`ip route show table all` lists both families).
//
// Devices come from Links, or from Addrs if Links is empty; when both are
// given, every device of Addrs must be in Links with the same index. Routes
// through a device need one of the two, or Model.Validate refuses them. A
// family whose rule dump is empty gets the default rules of a new
// namespace (fib.DefaultRules); a dump of "[]" means the namespace has no
// rules of the family.
//
// The kernel keeps the local and main tables merged until an IPv4 rule is
// first added or deleted. Parse sets State.Unmerged when the IPv4 rules are
// anything but the three defaults (0 lookup local, 32766 lookup main, 32767
// lookup default). A namespace that had a custom rule which was later
// deleted is split too, but cannot be told apart from this input: it is
// read as merged.
//
// Sysctls are not in these dumps: the model has none.
func Parse(d Dump) (*fib.Model, error) {
	var st fib.State
	var err error
	if st.Links, err = ParseLinks(d.Links); err != nil {
		return nil, fmt.Errorf("iproute: %w", err)
	}
	addrLinks, addrs, err := ParseAddrs(d.Addrs)
	if err != nil {
		return nil, fmt.Errorf("iproute: %w", err)
	}
	if len(st.Links) == 0 {
		st.Links = addrLinks
	} else if err := sameLinks(st.Links, addrLinks); err != nil {
		return nil, fmt.Errorf("iproute: %w", err)
	}
	st.Addrs = addrs
	for _, dump := range []struct {
		b, other []byte
		f        fib.Family
	}{{d.Routes4, d.Routes6, fib.V4}, {d.Routes6, d.Routes4, fib.V6}} {
		b := dump.b
		if len(bytes.TrimSpace(b)) == 0 {
			b = dump.other
		}
		routes, err := ParseRoutes(b, dump.f)
		if err != nil {
			return nil, fmt.Errorf("iproute: %s routes: %w", dump.f, err)
		}
		st.Routes = append(st.Routes, routes...)
	}
	for _, dump := range []struct {
		b []byte
		f fib.Family
	}{{d.Rules4, fib.V4}, {d.Rules6, fib.V6}} {
		if len(bytes.TrimSpace(dump.b)) == 0 {
			st.Rules = append(st.Rules, fib.DefaultRules(dump.f)...)
			continue
		}
		rules, err := ParseRules(dump.b, dump.f)
		if err != nil {
			return nil, fmt.Errorf("iproute: %s rules: %w", dump.f, err)
		}
		if dump.f == fib.V4 {
			st.Unmerged = !slices.Equal(rules, fib.DefaultRules(fib.V4))
		}
		st.Rules = append(st.Rules, rules...)
	}
	m := fib.FromState(st)
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("iproute: %w", err)
	}
	return m, nil
}

// sameLinks checks that the devices of the address dump are those of the
// link dump.
func sameLinks(links, addrLinks []fib.Link) error {
	for _, al := range addrLinks {
		i := slices.IndexFunc(links, func(l fib.Link) bool { return l.Name == al.Name })
		if i < 0 {
			return fmt.Errorf("address dump: device %q is not in the link dump", al.Name)
		}
		if l := links[i]; l.Index != al.Index {
			return fmt.Errorf("address dump: device %q has index %d, %d in the link dump", al.Name, al.Index, l.Index)
		}
	}
	return nil
}
