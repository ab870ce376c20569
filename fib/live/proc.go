package live

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/fibguard/fibguard/fib"
	"golang.org/x/sys/unix"
)

// procState is what Load reads from procfs inside the namespace.
type procState struct {
	conf map[string]fib.DevConf
	trie []byte
}

// readProc reads, from a thread inside the namespace, the IPv4 sysctls of
// "all" (the devices' own come with the link dump) and, if withTrie,
// /proc/net/fib_trie (which prints every route of every IPv4 table:
// megabytes for a big table). It reads /proc/thread-self/net, not
// /proc/self/net: only the reading thread is in the namespace, and
// /proc/self/net shows the main thread's.
func (t *target) readProc(withTrie bool) (procState, error) {
	var st procState
	err := t.do(func() error {
		c, err := readDevConf(fib.ConfAll)
		if err != nil {
			return err
		}
		st.conf = map[string]fib.DevConf{fib.ConfAll: c}
		if !withTrie {
			return nil
		}
		trie, err := readProcFile("/proc/thread-self/net/fib_trie")
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("read fib_trie: %w", err)
		}
		st.trie = trie
		return nil
	})
	if err != nil {
		return procState{}, fmt.Errorf("procfs of %s: %w", t, err)
	}
	return st, nil
}

// readProcFile reads a procfs file whole with plain system calls:
// os.ReadFile also stats it and registers it with the Go poller.
func readProcFile(path string) ([]byte, error) {
	var fd int
	var err error = unix.EINTR
	for errors.Is(err, unix.EINTR) {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer func() { _ = unix.Close(fd) }() // read-only: nothing to lose
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		case n == 0:
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// readDevConf reads net.ipv4.conf.DEV.* for one device or "all". The
// files are opened relative to the device's directory: a lookup of a
// /proc/sys path is costly, and a load reads dozens of them.
func readDevConf(dev string) (fib.DevConf, error) {
	dir := filepath.Join("/proc/sys/net/ipv4/conf", dev)
	var c fib.DevConf
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return c, fmt.Errorf("sysctl: %w", &fs.PathError{Op: "open", Path: dir, Err: err})
	}
	defer func() { _ = unix.Close(dfd) }() // a path descriptor: nothing to lose
	for _, f := range []struct {
		name string
		set  func(int)
	}{
		{"route_localnet", func(v int) { c.RouteLocalnet = v != 0 }},
		{"forwarding", func(v int) { c.Forwarding = v != 0 }},
		{"rp_filter", func(v int) { c.RPFilter = v }},
		{"ignore_routes_with_linkdown", func(v int) { c.IgnoreRoutesWithLinkdown = v != 0 }},
	} {
		b, err := readSysctlAt(dfd, dir, f.name)
		if err != nil {
			return c, fmt.Errorf("sysctl: %w", err)
		}
		v, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return c, fmt.Errorf("sysctl %s/%s: %w", dir, f.name, err)
		}
		f.set(v)
	}
	return c, nil
}

// readSysctlAt reads the sysctl file name of the directory open as dfd
// (dir names it for errors) with three system calls: os.ReadFile also
// stats the file and reads until EOF.
func readSysctlAt(dfd int, dir, name string) ([]byte, error) {
	var fd int
	var err error = unix.EINTR
	for errors.Is(err, unix.EINTR) {
		fd, err = unix.Openat(dfd, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir + "/" + name, Err: err}
	}
	defer func() { _ = unix.Close(fd) }() // read-only: nothing to lose
	var buf [64]byte
	var n int
	err = unix.EINTR
	for errors.Is(err, unix.EINTR) {
		n, err = unix.Read(fd, buf[:])
	}
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: dir + "/" + name, Err: err}
	}
	return buf[:n], nil
}

// unmerged decides whether the kernel keeps the IPv4 local and main tables
// apart, which it starts doing for good when the first IPv4 rule is added
// or deleted (fib_unmerge); nothing reports the state directly.
//
// While merged, the local table is an alias of main's trie, so
// /proc/net/fib_trie prints the same trie under "Local:" and "Main:"; once
// unmerged, each prints its own entries, and main no longer holds the
// local and broadcast routes. A table with an empty trie is not printed.
// So:
//   - both sections present: merged if and only if they are identical;
//   - only "Local:": unmerged (a merged main would repeat it);
//   - otherwise the local table is empty, nothing in fib_trie tells, and
//     the namespace counts as unmerged only if its IPv4 rules differ from
//     the default ones. A namespace whose rules were changed and then
//     restored is then taken as merged; while the local table is empty
//     both states give the same lookups, but a model that later gains
//     addresses may differ from the kernel.
func unmerged(trie []byte, rules []fib.Rule) bool {
	sections := trieSections(trie)
	local, hasLocal := sections["Local"]
	main, hasMain := sections["Main"]
	switch {
	case hasLocal && hasMain:
		return local != main
	case hasLocal:
		return true
	}
	return !defaultRules4(rules)
}

// defaultRules4 reports whether the IPv4 rules are exactly those of a new
// namespace.
func defaultRules4(rules []fib.Rule) bool {
	var v4 []fib.Rule
	for _, r := range rules {
		if r.Family == fib.V4 {
			v4 = append(v4, r)
		}
	}
	return slices.Equal(v4, fib.DefaultRules(fib.V4))
}

// trieSections splits /proc/net/fib_trie into the text of each table,
// keyed by its header without the colon ("Local", "Main", "Id 100").
func trieSections(trie []byte) map[string]string {
	sections := make(map[string]string)
	var (
		name string
		body strings.Builder
	)
	flush := func() {
		if name != "" {
			sections[name] = body.String()
		}
		body.Reset()
	}
	sc := bufio.NewScanner(bytes.NewReader(trie))
	for sc.Scan() {
		line := sc.Text()
		if line != "" && line[0] != ' ' && strings.HasSuffix(line, ":") {
			flush()
			name = strings.TrimSuffix(line, ":")
			continue
		}
		body.WriteString(line)
		body.WriteByte('\n')
	}
	flush()
	return sections
}
