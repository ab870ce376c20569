package iproute

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"

	"github.com/fibguard/fibguard/fib"
)

// ParseLinks reads the output of `ip -j -d link show`. Masters, which
// iproute2 prints by name, are resolved to indexes within the dump.
func ParseLinks(b []byte) ([]fib.Link, error) {
	items, err := decodeArray(b, "link")
	if err != nil {
		return nil, err
	}
	return parseLinks(items)
}

// ParseAddrs reads the output of `ip -j -d addr show`, which lists every
// device with its addresses of both families. It returns the devices, as
// ParseLinks does, and the addresses, whose Prefix is the local address
// with its prefix length (10.0.0.10/24, not masked). A point-to-point
// address has Peer set to the peer with the same prefix length, as the
// kernel applies it.
//
// IFA_F_SECONDARY and IFA_F_TEMPORARY are one bit: iproute2 prints it as
// "temporary" for IPv6, where it marks a privacy address, not a secondary
// one; Secondary is only set for IPv4, as fib/live does.
func ParseAddrs(b []byte) ([]fib.Link, []fib.Address, error) {
	items, err := decodeArray(b, "link")
	if err != nil {
		return nil, nil, err
	}
	links, err := parseLinks(items)
	if err != nil {
		return nil, nil, err
	}
	var addrs []fib.Address
	for i, it := range items {
		subs, err := it.objects("addr_info", "address")
		if err != nil {
			return nil, nil, err
		}
		for _, sub := range subs {
			a, err := parseAddress(sub, links[i].Name)
			if err != nil {
				return nil, nil, err
			}
			addrs = append(addrs, a)
		}
	}
	return links, addrs, nil
}

func parseLinks(items []*item) ([]fib.Link, error) {
	links := make([]fib.Link, len(items))
	masters := make([]string, len(items))
	index := make(map[string]int, len(items))
	seen := make(map[int]string, len(items))
	for i, it := range items {
		l, master, err := parseLink(it)
		if err != nil {
			return nil, err
		}
		if _, dup := index[l.Name]; dup {
			return nil, it.fail("ifname", errors.New("duplicate device name"))
		}
		if other, dup := seen[l.Index]; dup {
			return nil, it.fail("ifindex", fmt.Errorf("index also of %q", other))
		}
		index[l.Name], seen[l.Index] = l.Index, l.Name
		links[i], masters[i] = l, master
	}
	for i, m := range masters {
		if m == "" {
			continue
		}
		idx, ok := index[m]
		if !ok || m == links[i].Name {
			return nil, items[i].fail("master", errors.New("unknown device"))
		}
		links[i].Master = idx
	}
	return links, nil
}

// parseLink reads one device; it returns the name of its master, if any.
func parseLink(it *item) (fib.Link, string, error) {
	l := fib.Link{Kind: fib.KindOther}
	idx, ok, err := it.int("ifindex", 1, math.MaxInt32)
	if err != nil {
		return l, "", err
	}
	if !ok {
		return l, "", it.missing("ifindex")
	}
	l.Index = int(idx)
	if l.Name, err = it.needStr("ifname"); err != nil {
		return l, "", err
	}
	if l.Name == "" {
		return l, "", it.fail("ifname", errors.New("empty name"))
	}
	flags, err := it.strs("flags")
	if err != nil {
		return l, "", err
	}
	l.Up = slices.Contains(flags, "UP")
	l.Carrier = slices.Contains(flags, "LOWER_UP")
	if s, ok, err := it.str("group"); err != nil {
		return l, "", err
	} else if ok {
		if l.Group, err = parseGroup(s); err != nil {
			return l, "", it.fail("group", err)
		}
	}
	master, _, err := it.str("master")
	if err != nil {
		return l, "", err
	}
	linkType, _, err := it.str("link_type")
	if err != nil {
		return l, "", err
	}
	// "[772]" is how `ip -N` prints ARPHRD_LOOPBACK.
	if linkType == "loopback" || linkType == "[772]" {
		l.Kind = fib.KindLoopback
		return l, master, nil
	}
	info, ok, err := it.object("linkinfo")
	if err != nil || !ok {
		return l, master, err
	}
	kind, _, err := info.str("info_kind")
	if err != nil {
		return l, "", err
	}
	l.Kind = fib.KindOf(kind)
	if l.Kind == fib.KindVRF {
		if l.VRFTable, err = parseVRFTable(info); err != nil {
			return l, "", err
		}
	}
	return l, master, nil
}

// parseVRFTable reads the table of a VRF device from its
// "info_data": {"table": 100}.
func parseVRFTable(info *item) (fib.TableID, error) {
	data, ok, err := info.object("info_data")
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, info.missing("info_data")
	}
	t, ok, err := data.uint32("table")
	if err != nil {
		return 0, err
	}
	if !ok || t == 0 {
		return 0, data.missing("table")
	}
	return fib.TableID(t), nil
}

// parseAddress reads one entry of a device's "addr_info".
func parseAddress(it *item, dev string) (fib.Address, error) {
	a := fib.Address{Link: dev}
	fam, err := it.needStr("family")
	if err != nil {
		return a, err
	}
	var f fib.Family
	switch fam {
	case "inet":
		f = fib.V4
	case "inet6":
		f = fib.V6
	default:
		return a, it.fail("family", errors.New("unsupported family"))
	}
	local, err := it.needStr("local")
	if err != nil {
		return a, err
	}
	addr, err := parseAddr(local, f)
	if err != nil {
		return a, it.fail("local", fmt.Errorf("bad address: %w", err))
	}
	bits, ok, err := it.int("prefixlen", 0, int64(addr.BitLen()))
	if err != nil {
		return a, err
	}
	if !ok {
		return a, it.missing("prefixlen")
	}
	a.Prefix = netip.PrefixFrom(addr, int(bits))
	if s, ok, err := it.str("address"); err != nil {
		return a, err
	} else if ok {
		peer, err := parseAddr(s, f)
		if err != nil {
			return a, it.fail("address", fmt.Errorf("bad address: %w", err))
		}
		a.Peer = netip.PrefixFrom(peer, int(bits))
	}
	if s, ok, err := it.str("scope"); err != nil {
		return a, err
	} else if ok {
		if a.Scope, err = fib.ParseScope(s); err != nil {
			return a, it.fail("scope", err)
		}
	}
	a.Secondary = it.flag("secondary")
	a.NoPrefixRoute = it.flag("noprefixroute")
	a.Tentative = it.flag("tentative")
	a.Deprecated = it.flag("deprecated")
	return a, nil
}
