package checker

import (
	"net"
	"net/netip"

	current "github.com/containernetworking/cni/pkg/types/100"
)

// HostDestinations are the addresses Check looks up in the host's model
// for a result: every address of the result, in both of the forms the
// checks may read it in (an IPv4 address written with a 16-byte mask is
// IPv4-mapped to it, see readResult). A caller that reads only part of
// the host's tables (fib/live's LoadFor) reads what these lookups need; a
// lookup of an address missing here would walk tables the model holds in
// part, which the comparison with the kernel (FG040) would then report.
func HostDestinations(res *current.Result) []netip.Addr {
	if res == nil {
		return nil
	}
	var dsts []netip.Addr
	for _, ipc := range res.IPs {
		if ipc == nil {
			continue
		}
		if ip4 := ipc.Address.IP.To4(); ip4 != nil {
			dsts = append(dsts, netip.AddrFrom4([4]byte(ip4)))
		}
		if ip16 := ipc.Address.IP.To16(); ip16 != nil && len(ipc.Address.Mask) == net.IPv6len {
			dsts = append(dsts, netip.AddrFrom16([16]byte(ip16)))
		}
	}
	return dsts
}
