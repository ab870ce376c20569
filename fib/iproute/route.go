package iproute

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"

	"github.com/fibguard/fibguard/fib"
)

// ParseRoutes reads the routes of the family from the output of
// `ip -j [-d] route show table all` or `ip -j [-d] -6 route show table all`.
// The first lists the routes of both families (iproute2 asks the kernel for
// all families when no table is chosen), so routes of the other family are
// skipped: a route is of the family of its destination, and a default route
// is IPv6 if it has the "pref" key the kernel gives every IPv6 route, or else
// of the family of its gateway, or else IPv4.
//
// Every route it returns has a masked destination of the family, a table, a
// supported type, and a device or gateway if its type sends traffic; devices
// are not checked against any link list. A route that uses a nexthop object
// ("nhid") is read from the next hops iproute2 prints resolved beside it,
// and keeps the object's id.
// IPv6 blackhole, unreachable, prohibit and throw routes keep the "dev lo"
// the kernel reports for them.
func ParseRoutes(b []byte, family fib.Family) ([]fib.Route, error) {
	if err := checkFamily(family); err != nil {
		return nil, err
	}
	items, err := decodeArray(b, "route")
	if err != nil {
		return nil, err
	}
	routes := make([]fib.Route, 0, len(items))
	for _, it := range items {
		if routeFamily(it, family) != family {
			continue
		}
		r, err := parseRoute(it, family)
		if err != nil {
			return nil, err
		}
		routes = append(routes, r)
	}
	return routes, nil
}

// routeFamily guesses the family of a route, for skipping the routes of the
// other family. A route it cannot place is given the family asked for, so
// that parseRoute reports what is wrong with it.
func routeFamily(it *item, asked fib.Family) fib.Family {
	dst, _, err := it.str("dst")
	if err != nil {
		return asked
	}
	if dst != "default" {
		addr, _, _ := strings.Cut(dst, "/")
		if a, err := netip.ParseAddr(addr); err == nil {
			return fib.FamilyOf(a)
		}
		return asked
	}
	if it.has("pref") {
		return fib.V6
	}
	if gw, _, err := it.str("gateway"); err == nil {
		if a, err := netip.ParseAddr(gw); err == nil {
			return fib.FamilyOf(a)
		}
	}
	return fib.V4
}

func parseRoute(it *item, family fib.Family) (fib.Route, error) {
	r := fib.Route{
		Family:   family,
		Type:     fib.TypeUnicast,
		Table:    fib.TableMain,
		Protocol: "boot",
		Scope:    fib.ScopeUniverse,
	}
	dst, err := it.needStr("dst")
	if err != nil {
		return r, err
	}
	if r.Dst, err = parseRoutePrefix(dst, family); err != nil {
		return r, it.fail("dst", fmt.Errorf("bad prefix: %w", err))
	}
	if s, ok, err := it.str("type"); err != nil {
		return r, err
	} else if ok {
		if r.Type, err = parseRouteType(s); err != nil {
			return r, it.fail("type", err)
		}
	}
	if s, ok, err := it.str("table"); err != nil {
		return r, err
	} else if ok {
		if r.Table, err = parseTable(s); err != nil {
			return r, it.fail("table", err)
		}
	}
	if s, ok, err := it.str("from"); err != nil {
		return r, err
	} else if ok {
		if r.Src, err = parseRoutePrefix(s, family); err != nil {
			return r, it.fail("from", fmt.Errorf("bad prefix: %w", err))
		}
	}
	if s, ok, err := it.str("tos"); err != nil {
		return r, err
	} else if ok {
		if r.TOS, err = parseDSField(s); err != nil {
			return r, it.fail("tos", err)
		}
	}
	if r.Metric, _, err = it.uint32("metric"); err != nil {
		return r, err
	}
	if r.NHID, _, err = it.uint32("nhid"); err != nil {
		return r, err
	}
	if s, ok, err := it.str("scope"); err != nil {
		return r, err
	} else if ok {
		if r.Scope, err = fib.ParseScope(s); err != nil {
			return r, it.fail("scope", err)
		}
	}
	if s, ok, err := it.str("protocol"); err != nil {
		return r, err
	} else if ok {
		r.Protocol = routeProtocol(s)
	}
	if s, ok, err := it.str("prefsrc"); err != nil {
		return r, err
	} else if ok {
		if r.PrefSrc, err = parseAddr(s, family); err != nil {
			return r, it.fail("prefsrc", fmt.Errorf("bad address: %w", err))
		}
	}
	if r.NextHops, err = parseNextHops(it, family); err != nil {
		return r, err
	}
	if len(r.NextHops) == 0 && routesTraffic(r.Type) {
		return r, fmt.Errorf("%s: %s route without device or gateway", it.name, r.Type)
	}
	return r, nil
}

// parseNextHops reads the route's next hops: the "nexthops" array of a
// multipath route, or the route's own gateway and device.
func parseNextHops(it *item, family fib.Family) ([]fib.NextHop, error) {
	subs, err := it.objects("nexthops", "nexthop")
	if err != nil {
		return nil, err
	}
	if !it.has("nexthops") {
		nh, err := parseNextHop(it, family)
		if err != nil || nh == (fib.NextHop{}) {
			return nil, err
		}
		return []fib.NextHop{nh}, nil
	}
	for _, key := range []string{"dev", "gateway", "via"} {
		if it.has(key) {
			return nil, it.fail(key, errors.New("beside a nexthops array"))
		}
	}
	if len(subs) == 0 {
		return nil, it.fail("nexthops", errors.New("empty"))
	}
	nhs := make([]fib.NextHop, len(subs))
	for i, sub := range subs {
		if nhs[i], err = parseNextHop(sub, family); err != nil {
			return nil, err
		}
		w, ok, err := sub.int("weight", 1, maxWeight)
		if err != nil {
			return nil, err
		}
		if !ok {
			w = 1
		}
		nhs[i].Weight = int(w)
		if nhs[i].Link == "" && !nhs[i].Gateway.IsValid() {
			return nil, fmt.Errorf("%s: neither device nor gateway", sub.name)
		}
	}
	return nhs, nil
}

// parseNextHop reads "gateway" (or "via" for a gateway of the other family),
// "dev" and "flags" of a route or of one entry of its "nexthops".
func parseNextHop(it *item, family fib.Family) (fib.NextHop, error) {
	var nh fib.NextHop
	var err error
	if nh.Link, _, err = it.str("dev"); err != nil {
		return nh, err
	}
	if s, ok, err := it.str("gateway"); err != nil {
		return nh, err
	} else if ok {
		if nh.Gateway, err = parseAddr(s, family); err != nil {
			return nh, it.fail("gateway", fmt.Errorf("bad address: %w", err))
		}
	}
	if via, ok, err := it.object("via"); err != nil {
		return nh, err
	} else if ok {
		if nh.Gateway.IsValid() {
			return nh, it.fail("via", errors.New("beside a gateway"))
		}
		if nh.Gateway, err = parseVia(via); err != nil {
			return nh, err
		}
		if family == fib.V6 && fib.FamilyOf(nh.Gateway) != fib.V6 {
			// The kernel takes a gateway of the other family only for
			// IPv4 routes (RFC 5549).
			return nh, it.fail("via", errors.New("IPv4 gateway of an IPv6 route"))
		}
	}
	flags, err := it.strs("flags")
	if err != nil {
		return nh, err
	}
	for _, f := range flags {
		switch f {
		case "onlink":
			nh.OnLink = true
		case "linkdown":
			nh.LinkDown = true
		case "dead":
			nh.Dead = true
		}
	}
	if nh.Link == "" && !nh.Gateway.IsValid() {
		// A route without device keeps no flags: they belong to a next hop.
		return fib.NextHop{}, nil
	}
	return nh, nil
}

// parseVia reads {"family":"inet6","host":"fe80::1"}, an RTA_VIA gateway.
func parseVia(via *item) (netip.Addr, error) {
	fam, err := via.needStr("family")
	if err != nil {
		return netip.Addr{}, err
	}
	host, err := via.needStr("host")
	if err != nil {
		return netip.Addr{}, err
	}
	var f fib.Family
	switch fam {
	case "inet":
		f = fib.V4
	case "inet6":
		f = fib.V6
	default:
		return netip.Addr{}, via.fail("family", errors.New("unsupported family"))
	}
	a, err := parseAddr(host, f)
	if err != nil {
		return netip.Addr{}, via.fail("host", fmt.Errorf("bad address: %w", err))
	}
	return a, nil
}

// routesTraffic reports whether a route of the type sends packets to a
// device, and so needs one.
func routesTraffic(t fib.RouteType) bool {
	switch t {
	case fib.TypeBlackhole, fib.TypeUnreachable, fib.TypeProhibit, fib.TypeThrow:
		return false
	}
	return true
}

// maxWeight is the largest multipath weight (rtnh_hops + 1).
const maxWeight = math.MaxUint8 + 1
