package fib

import (
	"errors"
	"fmt"
	"iter"
	"maps"
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

// State is the data of a model: the devices, addresses, routes, rules
// and sysctls of one network namespace, as a loader reads them (fib/live
// from the kernel, fib/iproute from `ip -j` dumps) or a snapshot holds
// them. FromState makes a Model of it; Model.State returns a copy.
type State struct {
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
}

// Model is the routing state of one network namespace and the kernel's
// decisions on it: Lookup answers as the kernel would, and Apply makes
// changes with the side effects the kernel gives them. The zero value is
// an empty namespace with merged local and main tables and no rules; use
// NewModel for one that has the default rules and a loopback device, and
// FromState for one a loader read.
//
// A Model is not safe for concurrent use while it is being changed; lookups
// on a model that is no longer changed may run concurrently once Freeze
// has been called.
type Model struct {
	st  State
	idx *index
}

// FromState returns the model of a namespace's state. The model takes
// the state's slices and map: the caller must not change them afterwards.
// Validate checks the state.
func FromState(s State) *Model { return &Model{st: s} }

// State returns a copy of the model's data, which the caller may change
// and make a new model of.
func (m *Model) State() State { return m.Clone().st }

// Links returns the model's devices, in the model's order.
func (m *Model) Links() iter.Seq[Link] { return values(m.st.Links) }

// Addrs returns the model's addresses, in the kernel's order within each
// device and family.
func (m *Model) Addrs() iter.Seq[Address] { return values(m.st.Addrs) }

// Routes returns the model's routes, in the model's (dump) order. A route's
// NextHops must not be changed.
func (m *Model) Routes() iter.Seq[Route] { return values(m.st.Routes) }

// Rules returns the model's rules, in the model's order. A rule's UIDs
// must not be changed.
func (m *Model) Rules() iter.Seq[Rule] { return values(m.st.Rules) }

// DevConf returns the IPv4 sysctls set for a device (or ConfAll), without
// those of ConfAll combined in.
func (m *Model) DevConf(name string) DevConf { return m.st.Conf[name] }

// Unmerged reports whether the kernel keeps the IPv4 local and main tables
// apart (see State.Unmerged).
func (m *Model) Unmerged() bool { return m.st.Unmerged }

// values yields copies of a slice's elements.
func values[T any](s []T) iter.Seq[T] {
	return func(yield func(T) bool) {
		for _, v := range s {
			if !yield(v) {
				return
			}
		}
	}
}

// NewModel returns the state of a new network namespace: the default rules
// of both families and a loopback device "lo" that is down.
func NewModel() *Model {
	m := &Model{st: State{Links: []Link{{Index: 1, Name: "lo", Kind: KindLoopback}}}}
	m.st.Rules = append(DefaultRules(V4), DefaultRules(V6)...)
	return m
}

// Link returns the device with the given name.
func (m *Model) Link(name string) (Link, bool) {
	if l := m.link(name); l != nil {
		return *l, true
	}
	return Link{}, false
}

// link returns the model's own device of that name, nil if none.
func (m *Model) link(name string) *Link {
	for i := range m.st.Links {
		if m.st.Links[i].Name == name {
			return &m.st.Links[i]
		}
	}
	return nil
}

// LinkByIndex returns the device with the given index.
func (m *Model) LinkByIndex(index int) (Link, bool) {
	for i := range m.st.Links {
		if m.st.Links[i].Index == index {
			return m.st.Links[i], true
		}
	}
	return Link{}, false
}

// conf returns the effective IPv4 sysctls of a device, combining the
// device's own values with net.ipv4.conf.all the way the kernel does.
func (m *Model) conf(dev string) DevConf {
	all := m.st.Conf[ConfAll]
	d := m.st.Conf[dev]
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
	c := State{
		Links:       slices.Clone(m.st.Links),
		Addrs:       slices.Clone(m.st.Addrs),
		Routes:      make([]Route, len(m.st.Routes)),
		Rules:       make([]Rule, len(m.st.Rules)),
		Conf:        maps.Clone(m.st.Conf),
		Unmerged:    m.st.Unmerged,
		Forwarding6: m.st.Forwarding6,
	}
	for i, r := range m.st.Routes {
		r.NextHops = slices.Clone(r.NextHops)
		c.Routes[i] = r
	}
	for i, r := range m.st.Rules {
		if r.UIDs != nil {
			u := *r.UIDs
			r.UIDs = &u
		}
		c.Rules[i] = r
	}
	return &Model{st: c}
}

// Validate checks that the model is consistent: every prefix valid and of
// its family, every device named by an address, route or rule known, every
// route type and table sensible. It returns every problem at once, each
// naming the offending item.
func (m *Model) Validate() error {
	var errs []error
	names := make(map[string]bool, len(m.st.Links))
	indexes := make(map[int]bool, len(m.st.Links))
	for _, l := range m.st.Links {
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
	for _, a := range m.st.Addrs {
		if !a.Prefix.IsValid() {
			errs = append(errs, fmt.Errorf("address on %q: invalid prefix", a.Link))
		}
		if !names[a.Link] {
			errs = append(errs, fmt.Errorf("address %s: unknown device %q", a.Prefix, a.Link))
		}
	}
	for i := range m.st.Routes {
		if err := m.validateRoute(&m.st.Routes[i], names); err != nil {
			errs = append(errs, err)
		}
	}
	for i := range m.st.Rules {
		if err := validateRule(&m.st.Rules[i]); err != nil {
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
