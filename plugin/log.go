package plugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/containernetworking/cni/pkg/skel"
	"golang.org/x/sys/unix"

	"github.com/fibguard/fibguard/internal/filetype"
	"github.com/fibguard/fibguard/internal/netconf"
)

// logger returns the log of one command and a function that closes it.
//
// The log never goes to stdout: the CNI spec uses stdout for the result
// the runtime reads. With logFile it is appended there, one JSON object a
// line, at logLevel. Without it, it goes to stderr, which runtimes copy
// into their own log after a successful command — so only warnings and
// errors are written there (logLevel can still raise that to error), to
// keep fibguard from adding a line to the runtime's log on every pod. A
// logFile that cannot be opened, or that openLogFile refuses, is not a
// reason to fail a pod: the log then goes to stderr with a warning saying
// why.
func (p *Plugin) logger(conf *netconf.Config, cmd string, args *skel.CmdArgs) (*slog.Logger, func()) {
	w, level := p.Stderr, max(conf.LogLevel, slog.LevelWarn)
	closeLog := func() {}
	var openErr error
	if conf.LogFile != "" {
		f, err := openLogFile(conf.LogFile, os.Stdin, os.Stdout, os.Stderr)
		if err == nil {
			w, level = f, conf.LogLevel
			// Records are written unbuffered; a close error loses nothing.
			closeLog = func() { _ = f.Close() }
		} else {
			openErr = err
		}
	}
	log := slog.New(&commonAttrs{
		Handler: slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}),
		attrs: []slog.Attr{
			slog.String("plugin", netconf.Type), slog.String("command", cmd), slog.String("network", conf.Name),
			slog.String("containerID", args.ContainerID), slog.String("netns", args.Netns), slog.String("ifname", args.IfName),
		},
	})
	if openErr != nil {
		log.Warn("cannot open logFile, logging to stderr", "logFile", conf.LogFile, "error", openErr)
	}
	return log, closeLog
}

// logFileFlags open a log file for appending, creating it, without
// following a symbolic link at the last component (a link planted by
// another user would make root create or append to its target);
// filetype.Open adds non-blocking (a FIFO) and no controlling terminal.
const logFileFlags = unix.O_WRONLY | unix.O_APPEND | unix.O_CREAT | unix.O_NOFOLLOW

// openLogFile opens path, which must be a regular file or absent (then
// created, mode 0600), for appending. It refuses anything else — a
// directory, FIFO, socket, device or terminal, a symbolic link — and the
// plugin's own standard streams (std): a log line on stdout would come
// before the result the runtime reads there. The type is checked before
// the open, where the path exists, and again on what was opened.
func openLogFile(path string, std ...*os.File) (*os.File, error) {
	fd, _, err := filetype.Open(path, logFileFlags, 0o600, func(st *unix.Stat_t) error { return checkLogFile(path, st, std) })
	if errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("logFile %s is a symbolic link, which fibguard does not follow", path)
	}
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// checkLogFile accepts a regular file that is none of the standard
// streams.
func checkLogFile(path string, st *unix.Stat_t, std []*os.File) error {
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("logFile %s is a %s, not a regular file", path, filetype.Name(st.Mode))
	}
	for i, s := range std {
		var o unix.Stat_t
		if s != nil && unix.Fstat(int(s.Fd()), &o) == nil && o.Dev == st.Dev && o.Ino == st.Ino {
			return fmt.Errorf("logFile %s is the plugin's standard %s", path, [...]string{"input", "output", "error"}[min(i, 2)])
		}
	}
	return nil
}

// commonAttrs is a handler whose records all carry attrs first, as
// Logger.With would give them, encoded only when a record is written:
// With encodes them at once, and on an accepted ADD that logs to standard
// error no record is written at all.
type commonAttrs struct {
	slog.Handler
	attrs []slog.Attr
	once  sync.Once
	with  slog.Handler
}

// handler is the wrapped handler with attrs, made on first use.
func (c *commonAttrs) handler() slog.Handler {
	c.once.Do(func() { c.with = c.Handler.WithAttrs(c.attrs) })
	return c.with
}

func (c *commonAttrs) Handle(ctx context.Context, r slog.Record) error {
	return c.handler().Handle(ctx, r)
}

func (c *commonAttrs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return c.handler().WithAttrs(attrs)
}

func (c *commonAttrs) WithGroup(name string) slog.Handler {
	return c.handler().WithGroup(name)
}
