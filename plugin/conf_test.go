package plugin

import "github.com/fibguard/fibguard/internal/netconf/netconftest"

// Configurations as the runtime hands them to the plugin.
const (
	prevResult100 = netconftest.PrevResult100
	prevResult040 = netconftest.PrevResult040
)

var confJSON = netconftest.JSON
