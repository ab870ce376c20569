package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/fibguard/fibguard/internal/filetype"
	"github.com/fibguard/fibguard/internal/netconf"
	"github.com/fibguard/fibguard/plugin"
	"github.com/fibguard/fibguard/podevent"
)

// MaxCacheFile bounds a file of the result cache the agent reads: a
// cached attachment holds the network's configuration and the result, a
// few KiB; the same limit as the plugin's stdin, which carries both.
const MaxCacheFile = plugin.MaxConfigSize

// cacheKind is the "kind" libcni writes in its cache files (CNICacheV1).
const cacheKind = "cniCacheV1"

// Attachment is one pod network attachment as the container runtime cached
// it after a successful ADD (libcni's result cache, <cacheDir>/results),
// with fibguard's settings for its network.
type Attachment struct {
	// File is the cache file's name, "<network>-<container ID>-<ifname>":
	// the attachment's key.
	File        string
	ContainerID string
	Network     string
	IfName      string
	// Pod is the pod, from the cached CNI_ARGS; its zero value when they
	// name none (not a Kubernetes runtime).
	Pod podevent.Pod
	// Config is fibguard's entry of the network, with the cached result as
	// its prevResult: the settings the plugin judged the pod with.
	Config *netconf.Config
}

// cacheFile is a libcni cache file, as libcni writes it (cachedInfo).
type cacheFile struct {
	Kind        string          `json:"kind"`
	ContainerID string          `json:"containerId"`
	Config      []byte          `json:"config"`
	IfName      string          `json:"ifName"`
	NetworkName string          `json:"networkName"`
	CNIArgs     [][2]string     `json:"cniArgs"`
	Result      json.RawMessage `json:"result"`
}

// errNotGuarded: the attachment's network does not chain fibguard, so
// there is nothing of fibguard's to re-check (a secondary network of
// Multus, say, whose host-side routes are not meant to reach the pod).
var errNotGuarded = errors.New("the network does not chain fibguard")

// ReadAttachment reads one cache file. It returns errNotGuarded (wrapped)
// for an attachment whose network has no fibguard entry, and an error
// naming the file and the problem for anything it cannot use: a file that
// is not a regular one of at most MaxCacheFile bytes (checked before it
// is opened, and opened without blocking or following a link), not a
// cache file of libcni's, or with a configuration the plugin refuses.
func ReadAttachment(path string) (*Attachment, error) {
	b, err := readCacheFile(path)
	if err != nil {
		return nil, err
	}
	var c cacheFile
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: not a CNI cache file: %w", path, err)
	}
	if c.Kind != cacheKind || c.ContainerID == "" || c.NetworkName == "" || c.IfName == "" {
		return nil, fmt.Errorf("%s: not a CNI cache file (kind %q, container %q, network %q, interface %q)",
			path, c.Kind, c.ContainerID, c.NetworkName, c.IfName)
	}
	a := &Attachment{File: filepath.Base(path), ContainerID: c.ContainerID, Network: c.NetworkName, IfName: c.IfName}
	if a.Config, err = guardConfig(c.Config, c.Result); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if a.Pod, err = podOf(c.CNIArgs); err != nil && !errors.Is(err, podevent.ErrNoPod) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// readCacheFile reads a regular file of at most MaxCacheFile bytes; the
// runtime writes the cache files as plain files, never links.
func readCacheFile(path string) ([]byte, error) {
	return readRegular(path, unix.O_NOFOLLOW, "the runtime writes its cache as plain files")
}

// readRegular reads path, which must be a regular file of at most
// MaxCacheFile bytes: checked before it is opened (a FIFO would block the
// open, a device could act on it), opened without blocking, and checked
// again once open. flags may add O_NOFOLLOW; why says, in a refusal, why
// nothing else will do.
func readRegular(path string, flags int, why string) ([]byte, error) {
	b, _, err := filetype.ReadFile(path, unix.O_RDONLY|flags, MaxCacheFile, func(st *unix.Stat_t) error {
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return fmt.Errorf("%s is a %s, not a regular file: %s", path, filetype.Name(st.Mode), why)
		}
		return nil
	})
	if errors.Is(err, filetype.ErrTooLarge) {
		return nil, fmt.Errorf("%s is larger than %d bytes, the most the agent reads", path, MaxCacheFile)
	}
	return b, err
}

// guardConfig finds fibguard's entry in the cached network configuration
// (a conflist, or a single plugin's configuration) and reads it as the
// plugin would have on stdin, with the cached result as its prevResult.
// When the list has several fibguard entries the last one counts: it
// judged the whole chain.
func guardConfig(config []byte, result json.RawMessage) (*netconf.Config, error) {
	var list struct {
		CNIVersion string            `json:"cniVersion"`
		Name       string            `json:"name"`
		Type       string            `json:"type"`
		Plugins    []json.RawMessage `json:"plugins"`
	}
	if err := json.Unmarshal(config, &list); err != nil {
		return nil, fmt.Errorf("cached network configuration: %w", err)
	}
	entries := list.Plugins
	if entries == nil {
		entries = []json.RawMessage{config}
	}
	var entry map[string]json.RawMessage
	for _, e := range slices.Backward(entries) {
		// The type as libcni reads it: encoding/json into a struct.
		var t struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(e, &t); err != nil {
			return nil, fmt.Errorf("cached network configuration: plugin: %w", err)
		}
		if t.Type == netconf.Type {
			if err := json.Unmarshal(e, &entry); err != nil {
				return nil, fmt.Errorf("cached network configuration: fibguard's entry: %w", err)
			}
			break
		}
	}
	if entry == nil {
		return nil, errNotGuarded
	}
	for k, v := range map[string]any{"cniVersion": list.CNIVersion, "name": list.Name, "prevResult": result} {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("building fibguard's configuration: %w", err)
		}
		entry[k] = b
	}
	stdin, err := json.Marshal(entry)
	if err != nil {
		return nil, fmt.Errorf("building fibguard's configuration: %w", err)
	}
	conf, err := netconf.Parse(stdin)
	if err != nil {
		return nil, fmt.Errorf("fibguard's entry: %w", err)
	}
	return conf, nil
}

// podOf reads the pod from the cached CNI_ARGS pairs, as the plugin reads
// them from CNI_ARGS: a key given twice is refused.
func podOf(pairs [][2]string) (podevent.Pod, error) {
	args := make([]string, 0, len(pairs))
	for _, p := range pairs {
		if strings.ContainsAny(p[0]+p[1], ";=") {
			return podevent.Pod{}, fmt.Errorf("CNI_ARGS pair %q=%q holds ';' or '='", p[0], p[1])
		}
		args = append(args, p[0]+"="+p[1])
	}
	return podevent.PodFromCNIArgs(strings.Join(args, ";"))
}
