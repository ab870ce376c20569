// Package fastresult reads the CNI results of spec 1.0.0 and 1.1.0 that
// plugins commonly write, without encoding/json's reflection. It is an
// accelerator only: the CNI library's parser (types100.NewResult, through
// create.Create) is the reference, and Decode either returns exactly what
// the library returns for the same bytes or declines, and the caller asks
// the library. FuzzDecode holds it to that.
//
// Why: a plugin is a fresh process on every pod ADD, and encoding/json
// builds its reflection caches for every type of a result on first use,
// which costs more than the rest of parsing the configuration.
//
// It takes JSON of a plain subset: the object keys of the result types
// exactly as the specification spells them, each at most once; strings
// of printable ASCII without escapes; integers without fraction or
// exponent; no null. Anything else — an unknown or differently cased key,
// an escape, a non-ASCII byte, a null, a value the library's own types
// refuse — is declined, not judged: the library decides.
package fastresult

import (
	"net"
	"strconv"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// Decode parses data as types100.NewResult does, or reports false.
func Decode(data []byte) (*current.Result, bool) {
	d := decoder{data: data}
	r, ok := d.result()
	d.skipSpace()
	if !ok || d.pos != len(d.data) {
		return nil, false
	}
	if r.CNIVersion != "1.0.0" && r.CNIVersion != "1.1.0" {
		return nil, false
	}
	return r, true
}

// decoder reads data from pos on; every method reports false for input
// outside the subset, leaving pos anywhere.
type decoder struct {
	data []byte
	pos  int
}

func (d *decoder) result() (*current.Result, bool) {
	r := &current.Result{}
	ok := d.object(func(key string) bool {
		switch key {
		case "cniVersion":
			return d.str(&r.CNIVersion)
		case "interfaces":
			return d.array(func() bool {
				i := &current.Interface{}
				r.Interfaces = append(r.Interfaces, i)
				return d.iface(i)
			}, func() { r.Interfaces = []*current.Interface{} })
		case "ips":
			return d.array(func() bool {
				c := &current.IPConfig{}
				r.IPs = append(r.IPs, c)
				return d.ipConfig(c)
			}, func() { r.IPs = []*current.IPConfig{} })
		case "routes":
			return d.array(func() bool {
				rt := &types.Route{}
				r.Routes = append(r.Routes, rt)
				return d.route(rt)
			}, func() { r.Routes = []*types.Route{} })
		case "dns":
			return d.dns(&r.DNS)
		}
		return false
	})
	return r, ok
}

func (d *decoder) iface(i *current.Interface) bool {
	return d.object(func(key string) bool {
		switch key {
		case "name":
			return d.str(&i.Name)
		case "mac":
			return d.str(&i.Mac)
		case "mtu":
			return d.int(&i.Mtu)
		case "sandbox":
			return d.str(&i.Sandbox)
		case "socketPath":
			return d.str(&i.SocketPath)
		case "pciID":
			return d.str(&i.PciID)
		}
		return false
	})
}

func (d *decoder) ipConfig(c *current.IPConfig) bool {
	return d.object(func(key string) bool {
		switch key {
		case "interface":
			c.Interface = new(int)
			return d.int(c.Interface)
		case "address":
			return d.cidr(&c.Address)
		case "gateway":
			return d.ip(&c.Gateway)
		}
		return false
	})
}

func (d *decoder) route(r *types.Route) bool {
	return d.object(func(key string) bool {
		switch key {
		case "dst":
			return d.cidr(&r.Dst)
		case "gw":
			return d.ip(&r.GW)
		case "mtu":
			return d.int(&r.MTU)
		case "advmss":
			return d.int(&r.AdvMSS)
		case "priority":
			return d.int(&r.Priority)
		case "table":
			r.Table = new(int)
			return d.int(r.Table)
		case "scope":
			r.Scope = new(int)
			return d.int(r.Scope)
		}
		return false
	})
}

func (d *decoder) dns(n *types.DNS) bool {
	return d.object(func(key string) bool {
		switch key {
		case "nameservers":
			return d.strs(&n.Nameservers)
		case "domain":
			return d.str(&n.Domain)
		case "search":
			return d.strs(&n.Search)
		case "options":
			return d.strs(&n.Options)
		}
		return false
	})
}

// object reads an object, calling member for each key with pos at its
// value; a key given twice is declined.
func (d *decoder) object(member func(key string) bool) bool {
	if !d.byte('{') {
		return false
	}
	var seen []string
	if d.skipSpace(); d.peek() == '}' {
		d.pos++
		return true
	}
	for {
		var key string
		if !d.str(&key) || !d.byte(':') {
			return false
		}
		for _, k := range seen {
			if k == key {
				return false
			}
		}
		seen = append(seen, key)
		if d.skipSpace(); !member(key) {
			return false
		}
		d.skipSpace()
		switch d.next() {
		case ',':
			d.skipSpace()
		case '}':
			return true
		default:
			return false
		}
	}
}

// array reads an array, calling elem for each element; empty is called
// for "[]", which the library reads as an empty, non-nil slice.
func (d *decoder) array(elem func() bool, empty func()) bool {
	if !d.byte('[') {
		return false
	}
	if d.skipSpace(); d.peek() == ']' {
		d.pos++
		empty()
		return true
	}
	for {
		if d.skipSpace(); !elem() {
			return false
		}
		d.skipSpace()
		switch d.next() {
		case ',':
		case ']':
			return true
		default:
			return false
		}
	}
}

func (d *decoder) strs(dst *[]string) bool {
	return d.array(func() bool {
		var s string
		ok := d.str(&s)
		*dst = append(*dst, s)
		return ok
	}, func() { *dst = []string{} })
}

// str reads a string of printable ASCII without escapes.
func (d *decoder) str(dst *string) bool {
	if !d.byte('"') {
		return false
	}
	start := d.pos
	for ; d.pos < len(d.data); d.pos++ {
		switch c := d.data[d.pos]; {
		case c == '"':
			*dst = string(d.data[start:d.pos])
			d.pos++
			return true
		case c < 0x20 || c >= 0x80 || c == '\\':
			return false
		}
	}
	return false
}

// int reads an integer without fraction or exponent that fits an int.
func (d *decoder) int(dst *int) bool {
	start := d.pos
	if d.peek() == '-' {
		d.pos++
	}
	digits := d.pos
	for d.pos < len(d.data) && '0' <= d.data[d.pos] && d.data[d.pos] <= '9' {
		d.pos++
	}
	n := d.pos - digits
	if n == 0 || n > 18 || (n > 1 && d.data[digits] == '0') {
		return false
	}
	switch d.peek() {
	case '.', 'e', 'E':
		return false
	}
	v, err := strconv.Atoi(string(d.data[start:d.pos]))
	*dst = v
	return err == nil
}

// cidr reads an address with its prefix length as types.IPNet does.
func (d *decoder) cidr(dst *net.IPNet) bool {
	var s string
	if !d.str(&s) {
		return false
	}
	n, err := types.ParseCIDR(s)
	if err != nil {
		return false
	}
	*dst = *n
	return true
}

// ip reads an address as net.IP's UnmarshalText does ("" is nil).
func (d *decoder) ip(dst *net.IP) bool {
	var s string
	return d.str(&s) && dst.UnmarshalText([]byte(s)) == nil
}

func (d *decoder) byte(c byte) bool {
	d.skipSpace()
	return d.next() == c
}

func (d *decoder) next() byte {
	c := d.peek()
	d.pos++
	return c
}

func (d *decoder) peek() byte {
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

func (d *decoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}
