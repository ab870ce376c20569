package plugin

import (
	"log/slog"
	"os"

	"github.com/containernetworking/cni/pkg/skel"
)

// logger returns the log of one command and a function that closes it.
//
// The log never goes to stdout: the CNI spec uses stdout for the result
// the runtime reads. With logFile it is appended there, one JSON object a
// line, at logLevel. Without it, it goes to stderr, which runtimes copy
// into their own log after a successful command — so only warnings and
// errors are written there (logLevel can still raise that to error), to
// keep fibguard from adding a line to the runtime's log on every pod. A
// logFile that cannot be opened is not a reason to fail a pod: the log
// then goes to stderr with a warning saying why.
func (p *Plugin) logger(conf *Config, cmd string, args *skel.CmdArgs) (*slog.Logger, func()) {
	w, level := p.Stderr, max(conf.LogLevel, slog.LevelWarn)
	closeLog := func() {}
	var openErr error
	if conf.LogFile != "" {
		f, err := os.OpenFile(conf.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err == nil {
			w, level = f, conf.LogLevel
			// Records are written unbuffered; a close error loses nothing.
			closeLog = func() { _ = f.Close() }
		} else {
			openErr = err
		}
	}
	log := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})).With(
		"plugin", "fibguard", "command", cmd, "network", conf.Name,
		"containerID", args.ContainerID, "netns", args.Netns, "ifname", args.IfName)
	if openErr != nil {
		log.Warn("cannot open logFile, logging to stderr", "logFile", conf.LogFile, "error", openErr)
	}
	return log, closeLog
}
