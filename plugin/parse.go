package plugin

// ParseConfig reads fibguard's configuration as a command's stdin carries
// it — the conflist entry with the name, cniVersion and prevResult the
// runtime inserts — and validates it, as every command of the plugin does.
// Other parts of fibguard that judge an attachment with the plugin's own
// settings (the node agent, from the runtime's result cache) read it here,
// so that the entry has one reader. Errors are *types.Error, as for the
// plugin's commands.
func ParseConfig(stdin []byte) (*Config, error) { return parseConfig(stdin) }
