package plugin

import "github.com/fibguard/fibguard/internal/netconf"

// NetConf is the configuration the plugin reads on stdin; package netconf
// owns it. The alias remains for test/manifests, which reads its fields.
type NetConf = netconf.NetConf
