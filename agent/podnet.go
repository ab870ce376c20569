package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"

	"github.com/fibguard/fibguard/checker"
	"github.com/fibguard/fibguard/install"
)

// ipamRanges returns the pod networks the primary CNI configuration of
// dir hands addresses from: every subnet of a host-local IPAM section of
// its plugins ("ranges": [[{"subnet": ...}]], or the older "subnet"). Other
// IPAM plugins keep their ranges elsewhere and are not read. A directory
// without a primary configuration has none.
func ipamRanges(dir string) ([]checker.PodNetwork, error) {
	p, err := install.FindPrimary(dir)
	if errors.Is(err, install.ErrNoPrimary) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// The runtimes follow a link to the primary; so does this read.
	b, err := readRegular(p.Path, 0, "a CNI configuration is a file")
	if err != nil {
		return nil, err
	}
	var conf struct {
		IPAM    json.RawMessage   `json:"ipam"`
		Plugins []json.RawMessage `json:"plugins"`
	}
	if err := json.Unmarshal(b, &conf); err != nil {
		return nil, fmt.Errorf("%s: %w", p.Path, err)
	}
	var ipams []json.RawMessage
	if conf.Plugins == nil {
		ipams = append(ipams, conf.IPAM)
	}
	for _, pl := range conf.Plugins {
		var plugin struct {
			IPAM json.RawMessage `json:"ipam"`
		}
		if json.Unmarshal(pl, &plugin) == nil {
			ipams = append(ipams, plugin.IPAM)
		}
	}
	var out []checker.PodNetwork
	for _, ipam := range ipams {
		for _, s := range hostLocalSubnets(ipam) {
			out = append(out, checker.PodNetwork{Prefix: s, Source: "IPAM range of " + p.Path})
		}
	}
	return out, nil
}

// hostLocalSubnets returns the subnets of a host-local IPAM section; an
// unparsable one, or one of another IPAM plugin, has none.
func hostLocalSubnets(ipam json.RawMessage) []netip.Prefix {
	var h struct {
		Type   string `json:"type"`
		Subnet string `json:"subnet"`
		Ranges [][]struct {
			Subnet string `json:"subnet"`
		} `json:"ranges"`
	}
	if len(ipam) == 0 || json.Unmarshal(ipam, &h) != nil || h.Type != "host-local" {
		return nil
	}
	subnets := []string{h.Subnet}
	for _, set := range h.Ranges {
		for _, r := range set {
			subnets = append(subnets, r.Subnet)
		}
	}
	var out []netip.Prefix
	for _, s := range subnets {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}
