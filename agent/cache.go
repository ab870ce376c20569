package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// cache keeps the attachments read from the result cache directory, and
// reads a file again only when it changed: a round after a route change
// on a full node reads no file.
type cache struct {
	dir   string
	files map[string]cached
}

// cached is one file's last reading: its version, and the attachment, or
// nil (not fibguard's network, or unreadable: err).
type cached struct {
	version fileVersion
	att     *Attachment
	err     error
}

// fileVersion tells a file's versions apart.
type fileVersion struct {
	ino   uint64
	size  int64
	mtime time.Time
}

func newCache(dir string) *cache { return &cache{dir: dir, files: map[string]cached{}} }

// read returns the attachments of the directory now, and an error for
// each file that could not be read.
func (c *cache) read() ([]*Attachment, []error) {
	entries, err := os.ReadDir(c.dir)
	if errors.Is(err, fs.ErrNotExist) {
		clear(c.files)
		return nil, nil
	}
	if err != nil {
		return c.attachments(), []error{fmt.Errorf("listing the CNI result cache: %w", err)}
	}
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		seen[e.Name()] = true
		c.refresh(e)
	}
	for name := range c.files {
		if !seen[name] {
			delete(c.files, name)
		}
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(c.files)) {
		if err := c.files[name].err; err != nil {
			errs = append(errs, err)
		}
	}
	return c.attachments(), errs
}

// refresh reads a file again if its version changed.
func (c *cache) refresh(e fs.DirEntry) {
	v, err := versionOf(e)
	if old, ok := c.files[e.Name()]; ok && err == nil && old.version == v {
		return
	}
	a, err := ReadAttachment(filepath.Join(c.dir, e.Name()))
	if errors.Is(err, errNotGuarded) {
		err = nil
	}
	c.files[e.Name()] = cached{version: v, att: a, err: err}
}

func versionOf(e fs.DirEntry) (fileVersion, error) {
	fi, err := e.Info()
	if err != nil {
		return fileVersion{}, fmt.Errorf("stat %s: %w", e.Name(), err)
	}
	v := fileVersion{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		v.ino = st.Ino
	}
	return v, nil
}

// attachments lists the attachments read, by file name.
func (c *cache) attachments() []*Attachment {
	var out []*Attachment
	for _, name := range slices.Sorted(maps.Keys(c.files)) {
		if a := c.files[name].att; a != nil {
			out = append(out, a)
		}
	}
	return out
}
