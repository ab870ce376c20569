package fib

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// DevConf holds the per-device IPv4 sysctls (net.ipv4.conf.DEV.*) that
// change route resolution.
type DevConf struct {
	// RouteLocalnet lets 127.0.0.0/8 be routed to and from the device.
	RouteLocalnet bool `json:"routeLocalnet,omitempty"`
	// Forwarding lets packets arriving on the device be forwarded.
	Forwarding bool `json:"forwarding,omitempty"`
	// RPFilter is reverse-path filtering: 0 off, 1 strict, 2 loose.
	RPFilter int `json:"rpFilter,omitempty"`
	// IgnoreRoutesWithLinkdown skips routes through the device while it has
	// no carrier.
	IgnoreRoutesWithLinkdown bool `json:"ignoreRoutesWithLinkdown,omitempty"`
}

// ConfAll is the key of Model.Conf that holds net.ipv4.conf.all.
const ConfAll = "all"

// Model is the routing state of one network namespace. The zero value is an
// empty namespace with merged local and main tables and no rules; use
// NewModel for one that has the default rules and a loopback device.
//
// A Model is not safe for concurrent use while it is being changed; lookups
// on a model that is no longer changed may run concurrently once Freeze
// has been called.
type Model struct {
	Links  []Link    `json:"links"`
	Addrs  []Address `json:"addrs"`
	Routes []Route   `json:"routes"`
	Rules  []Rule    `json:"rules"`
	// Conf holds IPv4 device sysctls by device name, and ConfAll.
	Conf map[string]DevConf `json:"conf,omitempty"`
	// Unmerged is set once a custom IPv4 rule has ever been added: from then
	// on the kernel keeps the local and main tables apart and consults local
	// first. While it is false and only the default rules exist, local and
	// main are one trie searched by a single longest-prefix match.
	Unmerged bool `json:"unmerged,omitempty"`
	// Forwarding6 is net.ipv6.conf.all.forwarding: while it is on, every
	// IPv6 address of an up device has a subnet-router anycast route.
	// Snapshots do not hold it.
	Forwarding6 bool `json:"-"`

	idx *index
}

// NewModel returns the state of a new network namespace: the default rules
// of both families and a loopback device "lo" that is down.
func NewModel() *Model {
	m := &Model{
		Links: []Link{{Index: 1, Name: "lo", Kind: KindLoopback}},
	}
	m.Rules = append(DefaultRules(V4), DefaultRules(V6)...)
	return m
}

// Link returns the device with the given name.
func (m *Model) Link(name string) (*Link, bool) {
	for i := range m.Links {
		if m.Links[i].Name == name {
			return &m.Links[i], true
		}
	}
	return nil, false
}

// LinkByIndex returns the device with the given index.
func (m *Model) LinkByIndex(index int) (*Link, bool) {
	for i := range m.Links {
		if m.Links[i].Index == index {
			return &m.Links[i], true
		}
	}
	return nil, false
}

// conf returns the effective IPv4 sysctls of a device, combining the
// device's own values with net.ipv4.conf.all the way the kernel does.
func (m *Model) conf(dev string) DevConf {
	all := m.Conf[ConfAll]
	d := m.Conf[dev]
	return DevConf{
		RouteLocalnet:            all.RouteLocalnet || d.RouteLocalnet,
		Forwarding:               d.Forwarding,
		RPFilter:                 max(all.RPFilter, d.RPFilter),
		IgnoreRoutesWithLinkdown: all.IgnoreRoutesWithLinkdown || d.IgnoreRoutesWithLinkdown,
	}
}

// Clone returns a deep copy of the model, for what-if changes that must not
// touch the original.
func (m *Model) Clone() *Model {
	c := &Model{
		Links:       slices.Clone(m.Links),
		Addrs:       slices.Clone(m.Addrs),
		Routes:      make([]Route, len(m.Routes)),
		Rules:       make([]Rule, len(m.Rules)),
		Unmerged:    m.Unmerged,
		Forwarding6: m.Forwarding6,
	}
	for i, r := range m.Routes {
		r.NextHops = slices.Clone(r.NextHops)
		c.Routes[i] = r
	}
	for i, r := range m.Rules {
		if r.UIDs != nil {
			u := *r.UIDs
			r.UIDs = &u
		}
		c.Rules[i] = r
	}
	if m.Conf != nil {
		c.Conf = make(map[string]DevConf, len(m.Conf))
		for k, v := range m.Conf {
			c.Conf[k] = v
		}
	}
	return c
}

// Validate checks that the model is consistent: every prefix valid and of
// its family, every device named by an address, route or rule known, every
// route type and table sensible. It returns every problem at once, each
// naming the offending item.
func (m *Model) Validate() error {
	var errs []error
	names := make(map[string]bool, len(m.Links))
	indexes := make(map[int]bool, len(m.Links))
	for _, l := range m.Links {
		switch {
		case l.Name == "":
			errs = append(errs, fmt.Errorf("link %d: empty name", l.Index))
		case names[l.Name]:
			errs = append(errs, fmt.Errorf("link %q: duplicate name", l.Name))
		case l.Index <= 0 || indexes[l.Index]:
			errs = append(errs, fmt.Errorf("link %q: bad or duplicate index %d", l.Name, l.Index))
		}
		switch l.Kind {
		case KindLoopback, KindBridge, KindVeth, KindVRF, KindOther:
		default:
			errs = append(errs, fmt.Errorf("link %q: unknown kind %q", l.Name, l.Kind))
		}
		names[l.Name] = true
		indexes[l.Index] = true
	}
	for _, a := range m.Addrs {
		if !a.Prefix.IsValid() {
			errs = append(errs, fmt.Errorf("address on %q: invalid prefix", a.Link))
		}
		if !names[a.Link] {
			errs = append(errs, fmt.Errorf("address %s: unknown device %q", a.Prefix, a.Link))
		}
	}
	for i := range m.Routes {
		if err := m.validateRoute(&m.Routes[i], names); err != nil {
			errs = append(errs, err)
		}
	}
	for i := range m.Rules {
		if err := validateRule(&m.Rules[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *Model) validateRoute(r *Route, names map[string]bool) error {
	if !r.Dst.IsValid() {
		return fmt.Errorf("route in table %s: invalid destination", r.Table)
	}
	if r.Family != FamilyOf(r.Dst.Addr()) {
		return fmt.Errorf("route %s: destination is not of family %s", r, r.Family)
	}
	if r.Dst != r.Dst.Masked() {
		return fmt.Errorf("route %s: destination has host bits set", r)
	}
	if r.Type == TypeUnspec || r.Type > TypeThrow {
		return fmt.Errorf("route %s: invalid type %d", r.Dst, r.Type)
	}
	if r.Table == TableUnspec {
		return fmt.Errorf("route %s: table unspec", r)
	}
	for _, nh := range r.NextHops {
		if nh.Link != "" && !names[nh.Link] {
			return fmt.Errorf("route %s: unknown device %q", r, nh.Link)
		}
		if nh.Gateway.IsValid() && FamilyOf(nh.Gateway) != r.Family && r.Family == V6 {
			return fmt.Errorf("route %s: gateway %s is not IPv6", r, nh.Gateway)
		}
	}
	if r.routesTraffic() && len(r.NextHops) == 0 {
		return fmt.Errorf("route %s: %s route without a device", r, r.Type)
	}
	return nil
}

// routesTraffic reports whether the route type sends packets to a device
// (as opposed to refusing them or returning to rule evaluation).
func (r *Route) routesTraffic() bool {
	switch r.Type {
	case TypeBlackhole, TypeUnreachable, TypeProhibit, TypeThrow:
		return false
	}
	return true
}

func validateRule(r *Rule) error {
	for _, p := range []netip.Prefix{r.Src, r.Dst} {
		if p.IsValid() && FamilyOf(p.Addr()) != r.Family {
			return fmt.Errorf("rule %s: selector %s is not of family %s", r, p, r.Family)
		}
	}
	switch r.Action {
	case ActionLookup:
		// An l3mdev rule looks up the table of the flow's VRF device.
		if r.Table == TableUnspec && !r.L3MDev {
			return fmt.Errorf("rule %s: lookup without a table", r)
		}
	case ActionGoto, ActionNop, ActionBlackhole, ActionUnreachable, ActionProhibit:
	default:
		return fmt.Errorf("rule %d: unknown action %d", r.Priority, r.Action)
	}
	return nil
}
