package source

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/fib/iproute"
	"github.com/fibguard/fibguard/internal/cmd/cli"
	"github.com/fibguard/fibguard/internal/filetype"
)

// DumpFile is one of the six files of an --ip-dump directory: its name
// and the command whose output it holds.
type DumpFile struct {
	Name, Command string
	// set puts the file's bytes into the dump.
	set func(d *iproute.Dump, b []byte)
	// parse checks the file alone, to name it in an error.
	parse func(b []byte) error
}

// DumpFiles are the files --ip-dump reads, in the order the docs list
// them: all six are required.
var DumpFiles = []DumpFile{
	{"link.json", "ip -j -d link show",
		func(d *iproute.Dump, b []byte) { d.Links = b },
		func(b []byte) error { _, err := iproute.ParseLinks(b); return err }},
	{"addr.json", "ip -j -d addr show",
		func(d *iproute.Dump, b []byte) { d.Addrs = b },
		func(b []byte) error { _, _, err := iproute.ParseAddrs(b); return err }},
	{"route.json", "ip -j -d route show table all",
		func(d *iproute.Dump, b []byte) { d.Routes4 = b },
		func(b []byte) error { _, err := iproute.ParseRoutes(b, fib.V4); return err }},
	{"route6.json", "ip -j -d -6 route show table all",
		func(d *iproute.Dump, b []byte) { d.Routes6 = b },
		func(b []byte) error { _, err := iproute.ParseRoutes(b, fib.V6); return err }},
	{"rule.json", "ip -j rule show",
		func(d *iproute.Dump, b []byte) { d.Rules4 = b },
		func(b []byte) error { _, err := iproute.ParseRules(b, fib.V4); return err }},
	{"rule6.json", "ip -j -6 rule show",
		func(d *iproute.Dump, b []byte) { d.Rules6 = b },
		func(b []byte) error { _, err := iproute.ParseRules(b, fib.V6); return err }},
}

// MaxDumpSize bounds the six files of an --ip-dump together: the size of
// the largest snapshot fibguardctl reads (fib.MaxSnapshotSize).
const MaxDumpSize = fib.MaxSnapshotSize

// LoadIPDump builds the model of the node whose `ip -j` dumps are in dir
// (DumpFiles). Each file must be a regular file, not a link, a FIFO or a
// directory, and hold a JSON array; an error names the file, and for one
// that iproute2 would not have printed, what is wrong in it.
func LoadIPDump(dir string) (*fib.Model, error) {
	if err := isDir(dir); err != nil {
		return nil, err
	}
	var d iproute.Dump
	files := make(map[string][]byte, len(DumpFiles))
	budget := int64(MaxDumpSize)
	for _, f := range DumpFiles {
		b, err := readDumpFile(dir, f, budget)
		if err != nil {
			return nil, err
		}
		budget -= int64(len(b))
		f.set(&d, b)
		files[f.Name] = b
	}
	m, err := iproute.Parse(d)
	if err != nil {
		return nil, blame(dir, files, err)
	}
	return m, nil
}

// isDir checks that --ip-dump names a directory (or a link to one).
func isDir(dir string) error {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return cli.PathError("--ip-dump", dir, &os.PathError{Op: "stat", Path: dir, Err: err})
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("--ip-dump %s is a %s: want the directory that holds the six dumps (%s)", dir, filetype.Name(st.Mode), dumpNames())
	}
	return nil
}

// readDumpFile reads one dump: a regular file, not followed if it is a
// symbolic link (a dump sent by someone else must not make fibguardctl
// read any other file), of at most limit bytes, holding a JSON array.
func readDumpFile(dir string, f DumpFile, limit int64) ([]byte, error) {
	path := filepath.Join(dir, f.Name)
	b, _, err := filetype.ReadFile(path, unix.O_RDONLY|unix.O_NOFOLLOW, limit, func(st *unix.Stat_t) error {
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return fmt.Errorf("%s is a %s: want a regular file holding the output of `%s`", path, filetype.Name(st.Mode), f.Command)
		}
		return nil
	})
	switch {
	case errors.Is(err, filetype.ErrTooLarge):
		return nil, fmt.Errorf("%s: %w: the six dumps together may hold at most %d bytes", path, ErrTooLarge, int64(MaxDumpSize))
	case errors.Is(err, os.ErrNotExist):
		return nil, cli.Reword(err, "%s is missing: want the output of `%s` there (every one of %s)", path, f.Command, dumpNames())
	case err != nil:
		return nil, cli.PathError("dump", path, err)
	}
	if err := checkArray(b); err != nil {
		return nil, fmt.Errorf("%s: %w: want the output of `%s`, a JSON array ([] when there is nothing)", path, err, f.Command)
	}
	return b, nil
}

// checkArray says why b is not a JSON array, in words.
func checkArray(b []byte) error {
	t := bytes.TrimSpace(b)
	if len(t) == 0 {
		return errors.New("empty")
	}
	if err := cli.JSONSyntax(t); err != nil {
		return err
	}
	if t[0] != '[' {
		return fmt.Errorf("a JSON %s, not an array", jsonKind(t[0]))
	}
	return nil
}

// jsonKind names the JSON value that starts with c.
func jsonKind(c byte) string {
	switch c {
	case '{':
		return "object"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// blame names the dump an iproute.Parse error comes from: the first file
// that fails alone, or the set as a whole (a device of addr.json missing
// from link.json, a route through a device no dump lists).
func blame(dir string, files map[string][]byte, err error) error {
	for _, f := range DumpFiles {
		if ferr := f.parse(files[f.Name]); ferr != nil {
			return fmt.Errorf("%s: %w", filepath.Join(dir, f.Name), cli.Unparse(ferr))
		}
	}
	return fmt.Errorf("the dumps in %s do not describe one node: %w", dir, cli.Unparse(err))
}

// dumpNames lists the six file names.
func dumpNames() string {
	names := make([]string, len(DumpFiles))
	for i, f := range DumpFiles {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}
