package fib

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Family is an address family: IPv4 or IPv6.
type Family uint8

// Address families, numbered as AF_INET and AF_INET6.
const (
	V4 Family = 2
	V6 Family = 10
)

// String returns iproute2's name for the family ("inet", "inet6").
func (f Family) String() string {
	switch f {
	case V4:
		return "inet"
	case V6:
		return "inet6"
	}
	return "family(" + strconv.Itoa(int(f)) + ")"
}

// MarshalText writes iproute2's name for the family.
func (f Family) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText reads "inet" or "inet6".
func (f *Family) UnmarshalText(b []byte) error {
	switch string(b) {
	case "inet":
		*f = V4
	case "inet6":
		*f = V6
	default:
		return fmt.Errorf("unknown family %q", b)
	}
	return nil
}

// FamilyOf returns the family of an address; IPv4-mapped IPv6 addresses are
// IPv6, as they are to the kernel.
func FamilyOf(a netip.Addr) Family {
	if a.Is4() {
		return V4
	}
	return V6
}

// TableID identifies a routing table.
type TableID uint32

// Well-known tables, as in /etc/iproute2/rt_tables.
const (
	TableUnspec  TableID = 0
	TableDefault TableID = 253
	TableMain    TableID = 254
	TableLocal   TableID = 255
)

// String returns iproute2's name for the table: "local", "main", "default",
// or the number.
func (t TableID) String() string {
	switch t {
	case TableLocal:
		return "local"
	case TableMain:
		return "main"
	case TableDefault:
		return "default"
	}
	return strconv.FormatUint(uint64(t), 10)
}

// ParseTableID reads a table name or number as iproute2 prints it.
func ParseTableID(s string) (TableID, error) {
	switch s {
	case "local":
		return TableLocal, nil
	case "main":
		return TableMain, nil
	case "default":
		return TableDefault, nil
	case "unspec":
		return TableUnspec, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("unknown table %q", s)
	}
	return TableID(n), nil
}

// MarshalText writes the table as iproute2 names it.
func (t TableID) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText reads a table name or number.
func (t *TableID) UnmarshalText(b []byte) error {
	v, err := ParseTableID(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// RouteType is the type of a route (RTN_*), which decides what the kernel
// does with a packet that matches it.
type RouteType uint8

// Route types, numbered as the kernel's RTN_* constants.
const (
	TypeUnspec      RouteType = 0
	TypeUnicast     RouteType = 1
	TypeLocal       RouteType = 2
	TypeBroadcast   RouteType = 3
	TypeAnycast     RouteType = 4
	TypeMulticast   RouteType = 5
	TypeBlackhole   RouteType = 6
	TypeUnreachable RouteType = 7
	TypeProhibit    RouteType = 8
	TypeThrow       RouteType = 9
)

var routeTypeNames = [...]string{"unspec", "unicast", "local", "broadcast", "anycast", "multicast", "blackhole", "unreachable", "prohibit", "throw"}

// String returns iproute2's name for the type.
func (t RouteType) String() string {
	if int(t) < len(routeTypeNames) {
		return routeTypeNames[t]
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// ParseRouteType reads iproute2's name for a route type.
func ParseRouteType(s string) (RouteType, error) {
	for i, n := range routeTypeNames {
		if n == s {
			return RouteType(i), nil
		}
	}
	return 0, fmt.Errorf("unknown route type %q", s)
}

// MarshalText writes iproute2's name for the type.
func (t RouteType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText reads iproute2's name for the type.
func (t *RouteType) UnmarshalText(b []byte) error {
	v, err := ParseRouteType(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// Scope is a route or address scope (RT_SCOPE_*).
type Scope uint8

// Scopes, numbered as the kernel's RT_SCOPE_* constants.
const (
	ScopeUniverse Scope = 0
	ScopeSite     Scope = 200
	ScopeLink     Scope = 253
	ScopeHost     Scope = 254
	ScopeNowhere  Scope = 255
)

// String returns iproute2's name for the scope ("global" for universe).
func (s Scope) String() string {
	switch s {
	case ScopeUniverse:
		return "global"
	case ScopeSite:
		return "site"
	case ScopeLink:
		return "link"
	case ScopeHost:
		return "host"
	case ScopeNowhere:
		return "nowhere"
	}
	return strconv.Itoa(int(s))
}

// ParseScope reads iproute2's name or number for a scope.
func ParseScope(s string) (Scope, error) {
	switch s {
	case "global", "universe":
		return ScopeUniverse, nil
	case "site":
		return ScopeSite, nil
	case "link":
		return ScopeLink, nil
	case "host":
		return ScopeHost, nil
	case "nowhere":
		return ScopeNowhere, nil
	}
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("unknown scope %q", s)
	}
	return Scope(n), nil
}

// MarshalText writes iproute2's name for the scope.
func (s Scope) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads iproute2's name for the scope.
func (s *Scope) UnmarshalText(b []byte) error {
	v, err := ParseScope(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// LinkKind is the kind of a network device, as far as routing cares.
type LinkKind string

// Link kinds that change route resolution; everything else is "other".
const (
	KindLoopback LinkKind = "loopback"
	KindBridge   LinkKind = "bridge"
	KindVeth     LinkKind = "veth"
	KindVRF      LinkKind = "vrf"
	KindOther    LinkKind = "other"
)

// KindOf maps the kernel's link kind (IFLA_INFO_KIND, iproute2's
// "info_kind") to the kinds routing cares about; anything else is other.
// The loopback device has no kind: callers recognise it by its flags.
func KindOf(infoKind string) LinkKind {
	switch infoKind {
	case "bridge":
		return KindBridge
	case "veth":
		return KindVeth
	case "vrf":
		return KindVRF
	}
	return KindOther
}

// Link is a network device.
type Link struct {
	Index int      `json:"index"`
	Name  string   `json:"name"`
	Kind  LinkKind `json:"kind"`
	// Up is the administrative state (IFF_UP).
	Up bool `json:"up"`
	// Carrier is the lower-layer state (IFF_LOWER_UP). Routes through a
	// device without carrier are flagged linkdown.
	Carrier bool `json:"carrier"`
	// Master is the index of the bridge or VRF the device is enslaved to, 0
	// if none.
	Master int `json:"master,omitempty"`
	// Group is the device group (suppress_ifgroup matches it).
	Group uint32 `json:"group,omitempty"`
	// VRFTable is the table of a VRF device.
	VRFTable TableID `json:"vrfTable,omitempty"`
}

// Address is an address assigned to a device. Prefix holds the address
// itself with its prefix length (10.0.0.10/24), not the masked network.
type Address struct {
	Prefix netip.Prefix `json:"prefix"`
	Link   string       `json:"link"`
	Scope  Scope        `json:"scope"`
	// Peer is the peer address of a point-to-point address, if any.
	Peer          netip.Prefix `json:"peer,omitzero"`
	Secondary     bool         `json:"secondary,omitempty"`
	NoPrefixRoute bool         `json:"noprefixroute,omitempty"`
	// Tentative marks an IPv6 address still in duplicate address
	// detection; the kernel does not pick it as a source.
	Tentative bool `json:"tentative,omitempty"`
	// Deprecated marks an IPv6 address whose preferred lifetime is over.
	Deprecated bool `json:"deprecated,omitempty"`
}

// NextHop is one way out of a route.
type NextHop struct {
	Link    string     `json:"dev,omitempty"`
	Gateway netip.Addr `json:"gateway,omitzero"`
	Weight  int        `json:"weight,omitempty"`
	OnLink  bool       `json:"onlink,omitempty"`
	// LinkDown is set by the kernel while the device has no carrier.
	LinkDown bool `json:"linkdown,omitempty"`
	// Dead is set by the kernel while the device is down.
	Dead bool `json:"dead,omitempty"`
}

// Route is an entry of a routing table.
type Route struct {
	Family   Family       `json:"family"`
	Table    TableID      `json:"table"`
	Type     RouteType    `json:"type"`
	Dst      netip.Prefix `json:"dst"`
	Src      netip.Prefix `json:"src,omitzero"`
	TOS      uint8        `json:"tos,omitempty"`
	Metric   uint32       `json:"metric,omitempty"`
	Scope    Scope        `json:"scope"`
	Protocol string       `json:"protocol,omitempty"`
	PrefSrc  netip.Addr   `json:"prefsrc,omitzero"`
	// NHID is the id of the nexthop object the route uses (`ip route add
	// ... nhid N`), 0 for a route with its own next hops. NextHops then
	// holds the object's next hops (one, or the members of its group), as
	// the kernel spells them out; the kernel picks among a group's members
	// by its own rules (see Result.Paths).
	NHID     uint32    `json:"nhid,omitempty"`
	NextHops []NextHop `json:"nexthops,omitempty"`
}

// Dev returns the device of the route's first next hop, or "".
func (r *Route) Dev() string {
	if len(r.NextHops) == 0 {
		return ""
	}
	return r.NextHops[0].Link
}

// String formats the route the way `ip route show table all` does.
func (r *Route) String() string {
	var b strings.Builder
	if r.Type != TypeUnicast {
		b.WriteString(r.Type.String())
		b.WriteByte(' ')
	}
	if r.Dst.Bits() == 0 {
		b.WriteString("default")
	} else if r.Dst.IsSingleIP() {
		b.WriteString(r.Dst.Addr().String())
	} else {
		b.WriteString(r.Dst.String())
	}
	if r.Src.IsValid() {
		fmt.Fprintf(&b, " from %s", r.Src)
	}
	if r.TOS != 0 {
		fmt.Fprintf(&b, " tos 0x%x", r.TOS)
	}
	if r.NHID != 0 {
		fmt.Fprintf(&b, " nhid %d", r.NHID)
	}
	if len(r.NextHops) == 1 {
		nh := r.NextHops[0]
		if nh.Gateway.IsValid() {
			fmt.Fprintf(&b, " via %s", nh.Gateway)
		}
		if nh.Link != "" {
			fmt.Fprintf(&b, " dev %s", nh.Link)
		}
	}
	fmt.Fprintf(&b, " table %s", r.Table)
	if r.Protocol != "" {
		fmt.Fprintf(&b, " proto %s", r.Protocol)
	}
	if r.Scope != ScopeUniverse {
		fmt.Fprintf(&b, " scope %s", r.Scope)
	}
	if r.PrefSrc.IsValid() {
		fmt.Fprintf(&b, " src %s", r.PrefSrc)
	}
	if r.Metric != 0 {
		fmt.Fprintf(&b, " metric %d", r.Metric)
	}
	if len(r.NextHops) == 1 && r.NextHops[0].LinkDown {
		b.WriteString(" linkdown")
	}
	if len(r.NextHops) > 1 {
		for _, nh := range r.NextHops {
			b.WriteString(" nexthop")
			if nh.Gateway.IsValid() {
				fmt.Fprintf(&b, " via %s", nh.Gateway)
			}
			fmt.Fprintf(&b, " dev %s weight %d", nh.Link, max(nh.Weight, 1))
		}
	}
	return b.String()
}

// RuleAction is what a policy rule does when it matches (FR_ACT_*).
type RuleAction uint8

// Rule actions, numbered as the kernel's FR_ACT_* constants.
const (
	ActionLookup      RuleAction = 1
	ActionGoto        RuleAction = 2
	ActionNop         RuleAction = 3
	ActionBlackhole   RuleAction = 6
	ActionUnreachable RuleAction = 7
	ActionProhibit    RuleAction = 8
)

// String returns iproute2's word for the action.
func (a RuleAction) String() string {
	switch a {
	case ActionLookup:
		return "lookup"
	case ActionGoto:
		return "goto"
	case ActionNop:
		return "nop"
	case ActionBlackhole:
		return "blackhole"
	case ActionUnreachable:
		return "unreachable"
	case ActionProhibit:
		return "prohibit"
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// ParseRuleAction reads iproute2's word for a rule action.
func ParseRuleAction(s string) (RuleAction, error) {
	for _, a := range []RuleAction{ActionLookup, ActionGoto, ActionNop, ActionBlackhole, ActionUnreachable, ActionProhibit} {
		if a.String() == s {
			return a, nil
		}
	}
	return 0, fmt.Errorf("unknown rule action %q", s)
}

// MarshalText writes iproute2's word for the action.
func (a RuleAction) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText reads iproute2's word for the action.
func (a *RuleAction) UnmarshalText(b []byte) error {
	v, err := ParseRuleAction(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// PortRange is an inclusive range of ports; the zero value matches any.
type PortRange struct {
	Start uint16 `json:"start"`
	End   uint16 `json:"end"`
}

// UIDRange is an inclusive range of user ids.
type UIDRange struct {
	Start uint32 `json:"start"`
	End   uint32 `json:"end"`
}

// Rule is a policy routing rule (`ip rule`).
type Rule struct {
	Family   Family `json:"family"`
	Priority uint32 `json:"priority"`
	// Not inverts the selector ("not from ...").
	Not bool `json:"not,omitempty"`
	// Src and Dst select by source and destination prefix; invalid means any.
	Src netip.Prefix `json:"src,omitzero"`
	Dst netip.Prefix `json:"dst,omitzero"`
	// IIF and OIF select by input and output device name.
	IIF string `json:"iif,omitempty"`
	OIF string `json:"oif,omitempty"`
	// Mark and Mask select by firewall mark: a flow matches when
	// (flow mark ^ Mark) & Mask == 0. The kernel (and AddRule) turn a mark
	// given without a mask into Mask 0xffffffff; Mask 0 matches every mark.
	Mark    uint32     `json:"fwmark,omitempty"`
	Mask    uint32     `json:"fwmask,omitempty"`
	TOS     uint8      `json:"tos,omitempty"`
	L3MDev  bool       `json:"l3mdev,omitempty"`
	IPProto uint8      `json:"ipproto,omitempty"`
	SPort   PortRange  `json:"sport,omitzero"`
	DPort   PortRange  `json:"dport,omitzero"`
	UIDs    *UIDRange  `json:"uidrange,omitempty"`
	Action  RuleAction `json:"action"`
	Table   TableID    `json:"table,omitempty"`
	// Goto is the priority a goto rule jumps to.
	Goto uint32 `json:"goto,omitempty"`
	// SuppressPrefixLen rejects a lookup result whose prefix is this long or
	// shorter; -1 disables it.
	SuppressPrefixLen int `json:"suppressPrefixlength"`
	// SuppressIfGroup rejects a result whose device is in this group; -1
	// disables it.
	SuppressIfGroup int `json:"suppressIfgroup"`
}

// String formats the rule the way `ip rule show` does.
func (r *Rule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d:\t", r.Priority)
	if r.Not {
		b.WriteString("not ")
	}
	if r.Src.IsValid() {
		fmt.Fprintf(&b, "from %s", prefixText(r.Src))
	} else {
		b.WriteString("from all")
	}
	if r.Dst.IsValid() {
		fmt.Fprintf(&b, " to %s", prefixText(r.Dst))
	}
	if r.TOS != 0 {
		fmt.Fprintf(&b, " tos 0x%x", r.TOS)
	}
	if r.Mark != 0 || r.Mask != 0 {
		fmt.Fprintf(&b, " fwmark 0x%x", r.Mark)
		if r.Mask != 0xffffffff {
			fmt.Fprintf(&b, "/0x%x", r.Mask)
		}
	}
	if r.IIF != "" {
		fmt.Fprintf(&b, " iif %s", r.IIF)
	}
	if r.OIF != "" {
		fmt.Fprintf(&b, " oif %s", r.OIF)
	}
	if r.L3MDev {
		b.WriteString(" l3mdev")
	}
	if r.UIDs != nil {
		fmt.Fprintf(&b, " uidrange %d-%d", r.UIDs.Start, r.UIDs.End)
	}
	if r.IPProto != 0 {
		fmt.Fprintf(&b, " ipproto %d", r.IPProto)
	}
	if r.SPort != (PortRange{}) {
		fmt.Fprintf(&b, " sport %s", r.SPort)
	}
	if r.DPort != (PortRange{}) {
		fmt.Fprintf(&b, " dport %s", r.DPort)
	}
	switch r.Action {
	case ActionLookup:
		fmt.Fprintf(&b, " lookup %s", r.Table)
	case ActionGoto:
		fmt.Fprintf(&b, " goto %d", r.Goto)
	default:
		fmt.Fprintf(&b, " %s", r.Action)
	}
	if r.SuppressPrefixLen >= 0 {
		fmt.Fprintf(&b, " suppress_prefixlength %d", r.SuppressPrefixLen)
	}
	if r.SuppressIfGroup >= 0 {
		fmt.Fprintf(&b, " suppress_ifgroup %d", r.SuppressIfGroup)
	}
	return b.String()
}

func (p PortRange) String() string {
	if p.Start == p.End {
		return strconv.Itoa(int(p.Start))
	}
	return fmt.Sprintf("%d-%d", p.Start, p.End)
}

func prefixText(p netip.Prefix) string {
	if p.Bits() == 0 {
		return "all"
	}
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// DefaultRules returns the rules a new namespace has for the family:
// 0 lookup local, 32766 lookup main, 32767 lookup default (IPv6 has no
// default-table rule).
func DefaultRules(f Family) []Rule {
	r := func(prio uint32, t TableID) Rule {
		return Rule{Family: f, Priority: prio, Action: ActionLookup, Table: t, SuppressPrefixLen: -1, SuppressIfGroup: -1}
	}
	rules := []Rule{r(0, TableLocal), r(32766, TableMain)}
	if f == V4 {
		rules = append(rules, r(32767, TableDefault))
	}
	return rules
}
