package install

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

// backupSuffix names the copy of a .conf or .json that InsertEntry turned
// into a .conflist: "10-flannel.conf" is kept as
// "10-flannel.conf.fibguard-orig", an extension the runtimes do not read.
// RemoveEntry puts its exact bytes back. The copy is also the mark of a
// conversion, and is removed last.
const backupSuffix = ".fibguard-orig"

// maxAttempts bounds the retries of an edit that raced with a rewrite of the
// same file by its owner.
const maxAttempts = 5

// Action says what InsertEntry did to the primary configuration.
type Action string

// Actions of InsertEntry.
const (
	// Unchanged: the primary already had exactly this entry.
	Unchanged Action = "unchanged"
	// Inserted: the entry was appended to the primary's plugins.
	Inserted Action = "inserted"
	// Updated: an existing fibguard entry was replaced where it stood.
	Updated Action = "updated"
	// Converted: the primary was a .conf or .json; it was turned into a
	// .conflist with the entry appended, and the original kept as a backup.
	Converted Action = "converted"
)

// Change is the outcome of InsertEntry.
type Change struct {
	// Path is the primary configuration after the change.
	Path   string
	Action Action
}

// InsertEntry makes the primary configuration of dir (see FindPrimary)
// chain fibguard with entry e, idempotently:
//
//   - a .conflist gets the entry as its last plugin, and nothing else in
//     the file changes. An entry the installer wrote before is replaced; a
//     fibguard entry someone else wrote (without the installer's managedBy
//     mark) is taken out, its settings kept in the new entry where e does
//     not set them, and its exact bytes kept in the new entry for
//     RemoveEntry to put back;
//   - a .conf or .json becomes a .conflist of the same base name, holding
//     the original plugin and e. The original is first copied to
//     <name>.fibguard-orig, then the .conflist written, then the original
//     removed: at every step the directory's primary is a complete, valid
//     configuration.
//
// fibguard is always the last plugin, rather than right after the
// interface plugin (as docs/plugin.md recommends for hand-written lists):
// the installer does not know which plugin creates the interface, and last
// it checks the routes the pod really gets, after plugins such as sbr or
// tuning changed them. The cost is that portmap, bandwidth or firewall run
// before a pod is rejected; the runtime's DEL on the failed ADD undoes them.
// A list of nothing but fibguard is refused: no plugin would create the
// pod's interface.
//
// Every file is replaced by rename, keeping its mode and owner. If the
// owner rewrites the file meanwhile, the edit is redone on the new content.
func InsertEntry(dir string, e Entry) (Change, error) {
	if err := e.Validate(); err != nil {
		return Change{}, err
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return Change{}, err
	}
	defer unlock()
	if err := removeTemps(dir, ".*"+tmpMarker+"*"); err != nil {
		return Change{}, err
	}
	for range maxAttempts - 1 {
		ch, err := insertOnce(dir, e)
		if !errors.Is(err, errConflict) {
			return ch, err
		}
	}
	return insertOnce(dir, e)
}

func insertOnce(dir string, e Entry) (Change, error) {
	p, err := FindPrimary(dir)
	if err != nil {
		return Change{}, err
	}
	b, st, err := readFile(p.Path)
	if err != nil {
		return Change{}, err
	}
	if !p.List {
		return convertPrimary(dir, p, b, st, e)
	}
	c, err := parseConflist(b)
	if errors.Is(err, errNoPlugins) {
		return Change{}, fmt.Errorf("%s: %w: its plugins come from %s, where fibguard cannot be chained last",
			p.Path, err, filepath.Join(dir, p.Name))
	}
	if err != nil {
		return Change{}, fmt.Errorf("%s: %w", p.Path, err)
	}
	out, changed, err := c.withEntry(e)
	if err != nil {
		return Change{}, fmt.Errorf("%s: %w", p.Path, err)
	}
	if !changed {
		return Change{p.Path, Unchanged}, nil
	}
	if len(out) > MaxConfigFile {
		return Change{}, fmt.Errorf("%s: with fibguard's entry it would be %d bytes, larger than %d, the most the installer reads", p.Path, len(out), MaxConfigFile)
	}
	action := Inserted
	if len(c.ours()) > 0 {
		action = Updated
	}
	if err := writeFile(p.Path, out, st.mode.Perm(), st.uid, st.gid, &st); err != nil {
		return Change{}, err
	}
	return Change{p.Path, action}, nil
}

// convertPrimary replaces the single-plugin primary p (content b, version
// st) by a .conflist with the entry; see InsertEntry for the order.
func convertPrimary(dir string, p Primary, b []byte, st fileState, e Entry) (Change, error) {
	if t, err := pluginType(b); err != nil || t == PluginType {
		return Change{}, fmt.Errorf("%s: %w", p.Path, cmp.Or(err, errOnlyFibguard))
	}
	entry, err := e.json()
	if err != nil {
		return Change{}, err
	}
	target := strings.TrimSuffix(p.Path, filepath.Ext(p.Path)) + ".conflist"
	if err := checkConversionTarget(dir, p.Path, target); err != nil {
		return Change{}, err
	}
	out, err := convert(b, p.Name, p.CNIVersion, entry)
	if err != nil {
		return Change{}, fmt.Errorf("converting %s: %w", p.Path, err)
	}
	perm := st.mode.Perm()
	if err := writeFile(p.Path+backupSuffix, b, perm, st.uid, st.gid, nil); err != nil {
		return Change{}, err
	}
	if err := writeFile(target, out, perm, st.uid, st.gid, nil); err != nil {
		return Change{}, err
	}
	// The original goes last, and only if it is still the version that was
	// converted; if its owner rewrote it meanwhile, the next attempt
	// converts the new version.
	fi, err := os.Lstat(p.Path)
	if err != nil {
		return Change{}, fmt.Errorf("%s: %w", p.Path, errConflict)
	}
	if stateOf(fi) != st {
		return Change{}, fmt.Errorf("%s: %w", p.Path, errConflict)
	}
	if err := removeFile(p.Path); err != nil {
		return Change{}, err
	}
	return Change{target, Converted}, nil
}

// checkConversionTarget makes sure that replacing the primary single-plugin
// file primary by the .conflist target keeps target the primary, and that
// target, if it exists, is an earlier conversion by the installer (left by
// an interrupted run) rather than someone else's file.
func checkConversionTarget(dir, primary, target string) error {
	if b, _, err := readFile(target); err == nil {
		if !isConversion(b) {
			return fmt.Errorf("cannot convert %s: %s exists and is not fibguard's conversion of it", primary, target)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	files, err := libcni.ConfFiles(dir, configExts)
	if err != nil {
		return fmt.Errorf("listing CNI configurations in %s: %w", dir, err)
	}
	// The files before primary are all invalid (it is the primary). A valid
	// one between primary and target would become the primary.
	for _, f := range files {
		if f > primary && f < target {
			if _, ok := loadConfig(f); ok {
				return fmt.Errorf("cannot convert %s to %s: %s would then be the primary configuration", primary, target, f)
			}
		}
	}
	return nil
}

// isConversion reports whether b is a conflist as convertPrimary writes it:
// one plugin plus the installer's entry.
func isConversion(b []byte) bool {
	c, ok := parseOK(b)
	return ok && len(c.managed()) > 0 && len(c.others()) == 1
}

// parseOK parses a conflist and reports whether that worked, for callers
// to whom an unparsable file is simply not one of interest.
func parseOK(b []byte) (*conflist, bool) {
	c, err := parseConflist(b)
	return c, err == nil
}

// RemoveEntry undoes InsertEntry in dir: every conversion is undone (the
// original .conf or .json is back with its exact bytes, the .conflist made
// from it removed, then the backup), and every entry the installer wrote is
// removed from every valid .conflist, not only the primary's — the primary
// may have changed since the entry was inserted. The fibguard entries
// someone else wrote, which the installer took over, are put back where
// they stood. Each removal takes out exactly the bytes an insertion added,
// so a file InsertEntry changed gets its original bytes back. Entries the
// installer did not write stay (see EntriesLeft). A .conflist whose only
// plugin is the installer's entry is left alone and reported as an error:
// removing the entry would leave an invalid list, and the installer never
// writes such a list. It returns the files it changed.
func RemoveEntry(dir string) ([]string, error) {
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := removeTemps(dir, ".*"+tmpMarker+"*"); err != nil {
		return nil, err
	}
	changed, err := undoConversions(dir)
	if err != nil {
		return changed, err
	}
	files, err := libcni.ConfFiles(dir, []string{".conflist"})
	if err != nil {
		return changed, fmt.Errorf("listing CNI configurations in %s: %w", dir, err)
	}
	slices.Sort(files)
	var errs []error
	for _, f := range files {
		ok, err := removeFrom(f)
		if ok {
			changed = append(changed, f)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return changed, errors.Join(errs...)
}

// undoConversions restores every <orig>.fibguard-orig: the original first
// (unless its owner wrote a new one), then the conversion is removed, then
// the backup. Interrupted at any step, the primary is valid and a rerun
// finishes the job.
func undoConversions(dir string) ([]string, error) {
	backups, err := filepath.Glob(filepath.Join(dir, "*"+backupSuffix))
	if err != nil {
		return nil, fmt.Errorf("listing backups in %s: %w", dir, err)
	}
	slices.Sort(backups)
	var changed []string
	for _, backup := range backups {
		orig := strings.TrimSuffix(backup, backupSuffix)
		ext := filepath.Ext(orig)
		if ext != ".conf" && ext != ".json" {
			continue
		}
		if _, err := os.Lstat(orig); errors.Is(err, fs.ErrNotExist) {
			b, st, err := readFile(backup)
			if err != nil {
				return changed, err
			}
			if err := writeFile(orig, b, st.mode.Perm(), st.uid, st.gid, nil); err != nil {
				return changed, err
			}
			changed = append(changed, orig)
		} else if err != nil {
			return changed, fmt.Errorf("restoring %s: %w", orig, err)
		}
		conv := strings.TrimSuffix(orig, ext) + ".conflist"
		if b, _, err := readFile(conv); err == nil && isConversion(b) {
			if err := removeFile(conv); err != nil {
				return changed, err
			}
			changed = append(changed, conv)
		}
		if err := removeFile(backup); err != nil {
			return changed, err
		}
	}
	return changed, nil
}

// removeFrom removes fibguard's entries from the conflist f, if it is valid
// and has any, retrying when its owner rewrites it meanwhile.
func removeFrom(f string) (bool, error) {
	if fi, err := os.Lstat(f); err != nil || !fi.Mode().IsRegular() || fi.Size() > MaxConfigFile {
		// Gone meanwhile, a symlink or another non-regular file, or larger
		// than InsertEntry ever writes: nothing of ours can be in it.
		return false, nil //nolint:nilerr // nothing of ours can be in it
	}
	for range maxAttempts {
		b, st, err := readFile(f)
		if err != nil {
			return false, err
		}
		c, ok := parseOK(b)
		if !ok {
			// Not a list the runtime uses, so no entry of ours to remove:
			// the file is someone else's to fix.
			return false, nil
		}
		d, n, err := c.withoutManaged()
		if err != nil {
			return false, fmt.Errorf("%s: %w", f, err)
		}
		if n == 0 {
			return false, nil
		}
		err = writeFile(f, d.b, st.mode.Perm(), st.uid, st.gid, &st)
		if !errors.Is(err, errConflict) {
			return err == nil, err
		}
	}
	return false, fmt.Errorf("%s: %w %d times", f, errConflict, maxAttempts)
}

// CheckEntry reports whether the primary configuration of dir chains
// fibguard with exactly entry e, as InsertEntry leaves it: nil if so,
// otherwise an error saying what is missing. It changes nothing; it is the
// installer's readiness check.
func CheckEntry(dir string, e Entry) error {
	if err := e.Validate(); err != nil {
		return err
	}
	p, err := FindPrimary(dir)
	if err != nil {
		return err
	}
	if !p.List {
		return fmt.Errorf("primary configuration %s is a single plugin, without fibguard", p.Path)
	}
	b, _, err := readFile(p.Path)
	if err != nil {
		return err
	}
	c, err := parseConflist(b)
	if err != nil {
		return fmt.Errorf("%s: %w", p.Path, err)
	}
	_, changed, err := c.withEntry(e)
	if err != nil {
		return fmt.Errorf("primary configuration %s: %w", p.Path, err)
	}
	if !changed {
		return nil
	}
	return fmt.Errorf("primary configuration %s %s", p.Path, c.notInstalled())
}

// notInstalled says why a list is not as the installer leaves it.
func (c *conflist) notInstalled() string {
	hand, managed := c.handWritten(), c.managed()
	switch {
	case len(hand) > 0:
		return fmt.Sprintf("has a fibguard entry the installer did not write (plugin %d of %d, without %q): "+
			"the installer takes it over, keeping its settings, and puts it back on uninstall", hand[0]+1, len(c.elems), managedKey)
	case len(managed) == 0:
		return "has no fibguard entry"
	case len(managed) > 1:
		return fmt.Sprintf("has %d fibguard entries", len(managed))
	case managed[0] != len(c.elems)-1:
		return fmt.Sprintf("has fibguard as plugin %d of %d, not the last: it would check only the plugins before it",
			managed[0]+1, len(c.elems))
	}
	return fmt.Sprintf("has a fibguard entry other than the configured one: %s", c.elem(managed[0]))
}

// EntriesLeft returns the configuration files of dir, of the names the
// runtimes read, that name the fibguard plugin: after RemoveEntry, the
// entries someone else wrote. While one is left the binaries must stay:
// without the plugin that configuration would fail every pod instead of
// checking it. Files that cannot be read safely are not counted: the
// runtimes cannot use them either.
func EntriesLeft(dir string) ([]string, error) {
	files, err := libcni.ConfFiles(dir, configExts)
	if err != nil {
		return nil, fmt.Errorf("listing CNI configurations in %s: %w", dir, err)
	}
	slices.Sort(files)
	var left []string
	for _, f := range files {
		b, _, err := readRegular(f, true)
		if err != nil {
			continue
		}
		if namesFibguard(f, b) {
			left = append(left, f)
		}
	}
	return left, nil
}

// namesFibguard reports whether the configuration file f (content b) has
// a fibguard plugin.
func namesFibguard(f string, b []byte) bool {
	if filepath.Ext(f) == ".conflist" {
		c, ok := parseOK(b)
		return ok && len(c.ours()) > 0
	}
	t, err := pluginType(b)
	return err == nil && t == PluginType
}

// pluginType returns the "type" of a single-plugin configuration, as libcni
// decodes it.
func pluginType(b []byte) (string, error) {
	var plugin struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &plugin); err != nil {
		return "", fmt.Errorf("decoding the plugin's type: %w", err)
	}
	return plugin.Type, nil
}
