package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// capNumbers maps the capability names of the OCI spec to their numbers
// (linux/capability.h). A name missing here is left alone: runc itself
// decides what to do with a capability it does not know.
var capNumbers = map[string]uint{
	"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
	"CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
	"CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
	"CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
	"CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
	"CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
	"CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
	"CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
	"CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
	"CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
	"CAP_CHECKPOINT_RESTORE": 40,
}

// capSets are the lists of an OCI process's "capabilities" object.
var capSets = []string{"bounding", "effective", "inheritable", "permitted", "ambient"}

// specFile is a JSON file runc will read, and where its capabilities object is.
type specFile struct {
	path     string
	capsPath []string
}

// specFiles finds, in runc's arguments, the files that carry capability
// lists: the bundle's config.json (create, run) and an exec's process file.
// Global flags come before the command and never take these names.
func specFiles(args []string) []specFile {
	var files []specFile
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(args[i], "=")
		switch name {
		case "--bundle", "-b", "--process", "-p":
		default:
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				break
			}
			i++
			value = args[i]
		}
		if name == "--bundle" || name == "-b" {
			files = append(files, specFile{filepath.Join(value, "config.json"), []string{"process", "capabilities"}})
		} else {
			files = append(files, specFile{value, []string{"capabilities"}})
		}
	}
	return files
}

// readBoundingSet reads CapBnd from a /proc/PID/status file.
func readBoundingSet(status string) (uint64, error) {
	data, err := os.ReadFile(status)
	if err != nil {
		return 0, fmt.Errorf("reading the bounding set: %w", err)
	}
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "CapBnd:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: CapBnd %q: %w", status, v, err)
			}
			return n, nil
		}
	}
	if err := s.Err(); err != nil {
		return 0, fmt.Errorf("reading %s: %w", status, err)
	}
	return 0, fmt.Errorf("%s has no CapBnd line", status)
}

// filterFile rewrites path (through a temporary file and a rename) without
// the capabilities missing from bounding. A file without a capabilities
// object, or with nothing to remove, is not touched.
func filterFile(path string, capsPath []string, bounding uint64) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading the OCI spec: %w", err)
	}
	out, changed, err := filterSpec(data, capsPath, bounding)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if !changed {
		return nil
	}
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("reading the OCI spec: %w", err)
	}
	tmp := path + ".runcwrap"
	if err := os.WriteFile(tmp, out, info.Mode().Perm()); err != nil {
		return fmt.Errorf("writing the OCI spec: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing the OCI spec: %w", err)
	}
	return nil
}

// filterSpec returns the JSON document data without the capabilities that
// bounding lacks, in the object at capsPath, and whether anything changed.
// The document is decoded as generic JSON with numbers kept as written, so
// fields this program does not know survive unchanged.
func filterSpec(data []byte, capsPath []string, bounding uint64) ([]byte, bool, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, false, fmt.Errorf("decoding: %w", err)
	}
	obj := doc
	for _, key := range capsPath {
		next, ok := obj[key].(map[string]any)
		if !ok {
			return data, false, nil // no capabilities to filter
		}
		obj = next
	}
	changed := false
	for _, set := range capSets {
		raw, ok := obj[set]
		if !ok || raw == nil {
			continue
		}
		list, ok := raw.([]any)
		if !ok {
			return nil, false, errors.New(strings.Join(append(capsPath, set), ".") + " is not a list")
		}
		kept := make([]any, 0, len(list))
		for _, c := range list {
			name, _ := c.(string)
			if n, known := capNumbers[name]; known && bounding&(1<<n) == 0 {
				changed = true
				continue
			}
			kept = append(kept, c)
		}
		obj[set] = kept
	}
	if !changed {
		return data, false, nil
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, false, fmt.Errorf("encoding: %w", err)
	}
	return out, true, nil
}
