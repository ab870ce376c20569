package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/fibguard/fibguard/internal/netipx"
)

// hostLocalNet is the part of a configuration host-local reads
// (allocator.Net and IPAMConfig of the plugin).
type hostLocalNet struct {
	CNIVersion string `json:"cniVersion"`
	IPAM       *struct {
		hlRange
		Routes []*types.Route `json:"routes"`
		Ranges [][]hlRange    `json:"ranges"`
	} `json:"ipam"`
	RuntimeConfig struct {
		IPRanges [][]hlRange `json:"ipRanges,omitempty"`
		IPs      []string    `json:"ips,omitempty"`
	} `json:"runtimeConfig,omitempty"`
	Args *struct {
		A *struct {
			IPs []string `json:"ips"`
		} `json:"cni"`
	} `json:"args"`
}

// hlRange is one host-local range as configured.
type hlRange struct {
	RangeStart net.IP      `json:"rangeStart,omitempty"`
	RangeEnd   net.IP      `json:"rangeEnd,omitempty"`
	Subnet     types.IPNet `json:"subnet"`
	Gateway    net.IP      `json:"gateway,omitempty"`
}

// ipRange is a canonical range: every field set, as Range.Canonicalize
// leaves it.
type ipRange struct {
	subnet     netip.Prefix
	start, end netip.Addr
	gateway    netip.Addr
}

// contains is Range.Contains: in the subnet and within start..end.
func (r *ipRange) contains(a netip.Addr) bool {
	return r.subnet.Contains(a) && a.Compare(r.start) >= 0 && a.Compare(r.end) <= 0
}

func (r *ipRange) overlaps(o *ipRange) bool {
	if r.start.Is4() != o.start.Is4() {
		return false
	}
	return r.contains(o.start) || r.contains(o.end) || o.contains(r.start) || o.contains(r.end)
}

func (r *ipRange) String() string { return r.start.String() + "-" + r.end.String() }

// canonical reproduces Range.Canonicalize: the subnet must be a network
// address with at least two host bits; the gateway defaults to the first
// address and must be in the subnet; rangeStart defaults to the first
// address too (the allocator skips the gateway), rangeEnd to the last
// address, minus the broadcast address for IPv4.
func (c hlRange) canonical() (ipRange, error) {
	var r ipRange
	pfx, err := prefixOf(net.IPNet(c.Subnet))
	if err != nil {
		return r, fmt.Errorf("subnet: %w", err)
	}
	if pfx.Bits() > pfx.Addr().BitLen()-2 {
		return r, fmt.Errorf("network %s too small to allocate from", pfx)
	}
	if pfx != pfx.Masked() {
		return r, fmt.Errorf("network %s has host bits set: for a subnet mask of length %d the network address is %s", pfx, pfx.Bits(), pfx.Masked().Addr())
	}
	r.subnet = pfx
	r.gateway = pfx.Addr().Next()
	if c.Gateway != nil {
		gw, ok := netipx.FromIP(c.Gateway)
		if !ok || !pfx.Contains(gw) {
			return r, fmt.Errorf("gateway %s not in network %s", c.Gateway, pfx)
		}
		r.gateway = gw
	}
	r.start = pfx.Addr().Next()
	if c.RangeStart != nil {
		a, ok := netipx.FromIP(c.RangeStart)
		if !ok || !pfx.Contains(a) {
			return r, fmt.Errorf("RangeStart %s not in network %s", c.RangeStart, pfx)
		}
		r.start = a
	}
	r.end = netipx.LastAddr(pfx)
	if pfx.Addr().Is4() {
		r.end = r.end.Prev()
	}
	if c.RangeEnd != nil {
		a, ok := netipx.FromIP(c.RangeEnd)
		if !ok || !r.contains(a) {
			return r, fmt.Errorf("RangeEnd %s not in network %s", c.RangeEnd, pfx)
		}
		r.end = a
	}
	if r.start.Compare(r.end) > 0 {
		return r, fmt.Errorf("RangeStart %s is after RangeEnd %s in network %s", r.start, r.end, pfx)
	}
	return r, nil
}

// hostLocal returns what host-local's cmdAdd prints for the first pod of a
// network, whose store has no reservations yet: per range set, the first
// address from the first range's rangeStart on that is not its range's
// gateway (an address requested through args.cni.ips or runtimeConfig.ips
// instead, if one falls in the set), with the range's gateway; and the
// configured routes. Configuration errors are host-local's own.
func hostLocal(conf []byte) (*current.Result, error) {
	sets, requested, routes, err := loadHostLocal(conf)
	if err != nil {
		return nil, fmt.Errorf("host-local: %w", err)
	}
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion, Routes: routes}
	for idx, set := range sets {
		var ip netip.Addr
		var r *ipRange
		for i, req := range requested {
			if r = rangeFor(set, req); r != nil {
				ip = req
				requested = append(requested[:i], requested[i+1:]...)
				break
			}
		}
		if r != nil && ip == r.gateway {
			return nil, fmt.Errorf("host-local: failed to allocate for range %d: requested ip %s is subnet's gateway", idx, ip)
		}
		if r == nil {
			if ip, r = firstFree(set); r == nil {
				return nil, fmt.Errorf("host-local: failed to allocate for range %d: no IP addresses available in range set: %s", idx, setString(set))
			}
		}
		res.IPs = append(res.IPs, &current.IPConfig{
			Address: ipNet(netip.PrefixFrom(ip, r.subnet.Bits())),
			Gateway: net.IP(r.gateway.AsSlice()),
		})
	}
	if len(requested) != 0 {
		var s []string
		for _, a := range requested {
			s = append(s, a.String())
		}
		return nil, fmt.Errorf("host-local: failed to allocate all requested IPs: %s", strings.Join(s, " "))
	}
	return res, nil
}

// loadHostLocal reproduces allocator.LoadIPAMConfig: requested IPs from
// args.cni.ips and runtimeConfig.ips; the single old-style range, then
// runtimeConfig.ipRanges, prepended to the ranges; every range set
// canonical, of one family and free of overlaps, also with each other.
func loadHostLocal(conf []byte) ([][]ipRange, []netip.Addr, []*types.Route, error) {
	var n hostLocalNet
	if err := json.Unmarshal(conf, &n); err != nil {
		return nil, nil, nil, err
	}
	if n.IPAM == nil {
		return nil, nil, nil, errors.New("IPAM config missing 'ipam' key")
	}
	var reqs []string
	if n.Args != nil && n.Args.A != nil {
		reqs = append(reqs, n.Args.A.IPs...)
	}
	reqs = append(reqs, n.RuntimeConfig.IPs...)
	var requested []netip.Addr
	for _, s := range reqs {
		a, err := parseIPOrCIDR(s)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("cannot understand ip: %w", err)
		}
		requested = append(requested, a)
	}
	raw := n.IPAM.Ranges
	if n.IPAM.Subnet.IP != nil {
		raw = append([][]hlRange{{n.IPAM.hlRange}}, raw...)
	}
	raw = append(append([][]hlRange{}, n.RuntimeConfig.IPRanges...), raw...)
	if len(raw) == 0 {
		return nil, nil, nil, errors.New("no IP ranges specified")
	}
	sets := make([][]ipRange, len(raw))
	var v4, v6 int
	for i, rs := range raw {
		set, err := canonicalSet(rs)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("invalid range set %d: %w", i, err)
		}
		sets[i] = set
		if set[0].start.Is4() {
			v4++
		} else {
			v6++
		}
	}
	if v4 > 1 || v6 > 1 {
		if ok, _ := version.GreaterThanOrEqualTo(n.CNIVersion, "0.3.0"); !ok {
			return nil, nil, nil, fmt.Errorf("CNI version %v does not support more than 1 address per family", n.CNIVersion)
		}
	}
	for i := range sets {
		for j := i + 1; j < len(sets); j++ {
			if setsOverlap(sets[i], sets[j]) {
				return nil, nil, nil, fmt.Errorf("range set %d overlaps with %d", i, j)
			}
		}
	}
	return sets, requested, n.IPAM.Routes, nil
}

// canonicalSet is RangeSet.Canonicalize.
func canonicalSet(rs []hlRange) ([]ipRange, error) {
	if len(rs) == 0 {
		return nil, errors.New("empty range set")
	}
	set := make([]ipRange, len(rs))
	for i, c := range rs {
		r, err := c.canonical()
		if err != nil {
			return nil, err
		}
		if i > 0 && r.start.Is4() != set[0].start.Is4() {
			return nil, errors.New("mixed address families")
		}
		set[i] = r
	}
	for i := range set {
		for j := i + 1; j < len(set); j++ {
			if set[i].overlaps(&set[j]) {
				return nil, fmt.Errorf("subnets %s and %s overlap", set[i].String(), set[j].String())
			}
		}
	}
	return set, nil
}

func setsOverlap(a, b []ipRange) bool {
	for i := range a {
		for j := range b {
			if a[i].overlaps(&b[j]) {
				return true
			}
		}
	}
	return false
}

func rangeFor(set []ipRange, a netip.Addr) *ipRange {
	for i := range set {
		if set[i].contains(a) {
			return &set[i]
		}
	}
	return nil
}

func setString(set []ipRange) string {
	s := make([]string, len(set))
	for i := range set {
		s[i] = set[i].String()
	}
	return strings.Join(s, ",")
}

// firstFree walks the range set as host-local's RangeIter does on an empty
// store: from the first range's start to its end, then the next range,
// skipping each range's gateway; every other address is free.
func firstFree(set []ipRange) (netip.Addr, *ipRange) {
	for i := range set {
		r := &set[i]
		for a := r.start; a.Compare(r.end) <= 0 && a.IsValid(); a = a.Next() {
			if a != r.gateway {
				return a, r
			}
		}
	}
	return netip.Addr{}, nil
}

// parseIPOrCIDR reads an address as the plugins' ip.IP does: "10.0.0.5" or
// "10.0.0.5/24"; only the address counts.
func parseIPOrCIDR(s string) (netip.Addr, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("invalid IP address %s", s)
		}
		return p.Addr().Unmap(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("invalid IP address %s", s)
	}
	return a.Unmap(), nil
}
