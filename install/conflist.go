package install

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// A conflist is the bytes of a .conflist file and where its "plugins" array
// and that array's elements lie in them. Edits splice bytes in or out, so
// everything else in the file stays as it was: key order, number formats,
// unknown fields, duplicate keys, whitespace. That is stricter than
// decoding into map[string]any and encoding again, which sorts keys and
// reformats the file, and it lets RemoveEntry give back the original bytes.
type conflist struct {
	b []byte
	// plugins is the span of the "plugins" array value; its end is just
	// after the closing ']'.
	plugins span
	elems   []element
}

// span is the half-open byte range [start, end) of a JSON value.
type span struct{ start, end int }

// element is one element of the plugins array.
type element struct {
	span
	// typ is the element's "type" as libcni reads it (encoding/json into a
	// struct: the key matches case-insensitively, the last one wins).
	typ string
	// managed is true for a fibguard entry the installer wrote (managedKey).
	managed bool
}

var errNoPlugins = errors.New(`no inline "plugins" array`)

// parseConflist finds the "plugins" array of a conflist. The document must
// be a JSON object; like libcni (which decodes into a map) it takes the last
// "plugins" key if there are several.
func parseConflist(b []byte) (*conflist, error) {
	if !json.Valid(b) {
		var v any
		err := json.Unmarshal(b, &v)
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	members, err := objectMembers(b)
	if err != nil {
		return nil, err
	}
	c := &conflist{b: b, plugins: span{-1, -1}}
	for _, m := range members {
		if m.key == "plugins" {
			c.plugins = m.at
		}
	}
	if c.plugins.start < 0 {
		return nil, errNoPlugins
	}
	if b[c.plugins.start] != '[' {
		return nil, errors.New(`"plugins" is not an array`)
	}
	i := skipSpace(b, c.plugins.start+1)
	for b[i] != ']' {
		end := valueEnd(b, i)
		var t struct {
			Type      string `json:"type"`
			ManagedBy string `json:"managedBy"`
		}
		// A non-object element fails here; libcni refuses such a list too.
		if err := json.Unmarshal(b[i:end], &t); err != nil {
			return nil, fmt.Errorf("plugin %d: %w", len(c.elems), err)
		}
		managed := t.Type == PluginType && t.ManagedBy == managedValue
		c.elems = append(c.elems, element{span{i, end}, t.Type, managed})
		i = skipSpace(b, end)
		if b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return c, nil
}

// ours returns the indexes of fibguard's entries, whoever wrote them.
func (c *conflist) ours() []int {
	return c.indexes(func(e element) bool { return e.typ == PluginType })
}

// managed returns the indexes of the entries the installer wrote.
func (c *conflist) managed() []int {
	return c.indexes(func(e element) bool { return e.managed })
}

// handWritten returns the indexes of fibguard entries someone else wrote.
func (c *conflist) handWritten() []int {
	return c.indexes(func(e element) bool { return e.typ == PluginType && !e.managed })
}

func (c *conflist) indexes(match func(element) bool) []int {
	var idx []int
	for i, e := range c.elems {
		if match(e) {
			idx = append(idx, i)
		}
	}
	return idx
}

// others returns the bytes of every element that is not fibguard's.
func (c *conflist) others() [][]byte {
	var out [][]byte
	for i, e := range c.elems {
		if e.typ != PluginType {
			out = append(out, c.elem(i))
		}
	}
	return out
}

// withEntry returns the document with e installed: exactly one fibguard
// entry, the installer's, as the last element. fibguard checks the result
// of the plugins before it, so an entry anywhere else — first, in the
// middle, or alone — would fail every ADD ("no prevResult") or check only
// part of the chain.
//
// Entries the installer wrote before are first undone (withoutManaged), so
// installing again with other settings, or after someone moved the entry,
// starts from the list as its owner wrote it. Entries someone else wrote
// are then taken out, their exact bytes kept in the new entry
// (handWritten) for uninstall to put back, and their settings carried over
// where e does not set them (Entry.installed). changed is false, and out
// the input, when the document already holds that result as JSON values:
// re-indenting the file is not a change.
func (c *conflist) withEntry(e Entry) (out []byte, changed bool, err error) {
	base, _, err := c.withoutManaged()
	if err != nil {
		return nil, false, err
	}
	switch {
	case len(base.elems) == 0:
		return nil, false, errors.New(`"plugins" is empty`)
	case len(base.ours()) == len(base.elems):
		return nil, false, errOnlyFibguard
	}
	d, hand, stash, err := base.takeHandWritten()
	if err != nil {
		return nil, false, err
	}
	entry, err := e.installed(hand, stash)
	if err != nil {
		return nil, false, err
	}
	// Append after the last element, with the separator that precedes
	// it, so that removing exactly what was added restores the bytes.
	n := len(d.elems) - 1
	out = splice(d.b, d.elems[n].end, d.elems[n].end, ","+d.gapBefore(n)+d.render(entry, n))
	if sameJSON(out, c.b) {
		return c.b, false, nil
	}
	return out, true, nil
}

// takeHandWritten returns the document without the fibguard entries
// someone else wrote, those entries in list order, and what was cut for
// each, in the order of the cuts (the last entry first).
func (c *conflist) takeHandWritten() (*conflist, [][]byte, []handEntry, error) {
	d := c
	var hand [][]byte
	var stash []handEntry
	for idx := d.handWritten(); len(idx) > 0; idx = d.handWritten() {
		i := idx[len(idx)-1]
		from, to := d.cut(i)
		stash = append(stash, newHandEntry(i, d.b[from:to]))
		hand = append([][]byte{d.elem(i)}, hand...)
		var err error
		if d, err = d.without(i); err != nil {
			return nil, nil, nil, err
		}
	}
	return d, hand, stash, nil
}

// errOnlyFibguard: a list of nothing but fibguard has no plugin that
// creates the pod's interface, so no result for fibguard to check.
var errOnlyFibguard = errors.New("fibguard is the only plugin of the list: no plugin before it creates the pod's interface " +
	"(every ADD would fail with \"no prevResult\"); the primary CNI's plugins must come first")

// withoutManaged returns the document without the installer's entries,
// each replaced by the hand-written entries it holds, put back where they
// stood with their exact bytes: undoing what withEntry did gives back the
// bytes it started from. It returns how many entries it removed, and
// refuses to leave a list with no plugins, which the runtimes refuse.
func (c *conflist) withoutManaged() (*conflist, int, error) {
	d := c
	removed := 0
	for idx := d.managed(); len(idx) > 0; idx = d.managed() {
		i := idx[len(idx)-1]
		stash, err := stashOf(d.elem(i))
		if err != nil {
			return nil, 0, fmt.Errorf("plugin %d: %w", i, err)
		}
		if len(d.elems) == 1 && len(stash) == 0 {
			return nil, 0, fmt.Errorf("%w; removing it would leave an invalid list", errOnlyFibguard)
		}
		if d, err = d.without(i); err != nil {
			return nil, 0, err
		}
		for j := len(stash) - 1; j >= 0; j-- {
			if d, err = d.restore(stash[j]); err != nil {
				return nil, 0, err
			}
		}
		removed++
	}
	return d, removed, nil
}

// stashOf returns the hand-written entries an entry of the installer holds.
func stashOf(entry []byte) ([]handEntry, error) {
	var e struct {
		HandWritten []handEntry `json:"handWritten"`
	}
	if err := json.Unmarshal(entry, &e); err != nil {
		return nil, fmt.Errorf("reading %s: %w", handKey, err)
	}
	return e.HandWritten, nil
}

// restore puts a hand-written entry back: h.Text at index h.At, or last if
// the list is shorter now. The text must give back exactly one more
// element there, a fibguard entry that is not the installer's: the
// installer puts back what it took, nothing else.
func (c *conflist) restore(h handEntry) (*conflist, error) {
	at := min(max(h.At, 0), len(c.elems))
	var pos int
	switch {
	case at > 0:
		pos = c.elems[at-1].end
	case len(c.elems) > 0:
		pos = c.elems[0].start
	default:
		pos = c.plugins.start + 1
	}
	d, err := parseConflist(splice(c.b, pos, pos, h.text()))
	if err != nil || len(d.elems) != len(c.elems)+1 || d.elems[at].typ != PluginType || d.elems[at].managed {
		return nil, fmt.Errorf("%s: entry %d (%q) is not a fibguard entry that can be put back", handKey, h.At, h.text())
	}
	return d, nil
}

// without returns the document without element i, parsed again.
func (c *conflist) without(i int) (*conflist, error) {
	from, to := c.cut(i)
	d, err := parseConflist(splice(c.b, from, to, ""))
	if err != nil {
		return nil, fmt.Errorf("after removing plugin %d: %w", i, err)
	}
	return d, nil
}

// elem returns the bytes of element i.
func (c *conflist) elem(i int) []byte { return c.b[c.elems[i].start:c.elems[i].end] }

// cut returns the bytes to remove with element i: the separator before it
// (the previous element's end up to i's end), or for the first element the
// element and the separator after it, so that the rest keeps its layout.
func (c *conflist) cut(i int) (from, to int) {
	if i > 0 {
		return c.elems[i-1].end, c.elems[i].end
	}
	if len(c.elems) > 1 {
		return c.elems[0].start, c.elems[1].start
	}
	return c.elems[0].start, c.elems[0].end
}

// gapBefore returns the whitespace between element i and the '[' or ','
// before it.
func (c *conflist) gapBefore(i int) string {
	e := c.elems[i]
	j := e.start
	for j > c.plugins.start && isSpace(c.b[j-1]) {
		j--
	}
	return string(c.b[j:e.start])
}

// render formats entry to sit where element i sits: compact when the list
// is on one line, otherwise indented like element i.
func (c *conflist) render(entry []byte, i int) string {
	gap := c.gapBefore(i)
	nl := strings.LastIndexByte(gap, '\n')
	if nl < 0 {
		return string(entry)
	}
	prefix := gap[nl+1:]
	var b bytes.Buffer
	// entry is valid JSON (Entry.json built it), so Indent cannot fail.
	if err := json.Indent(&b, entry, prefix, c.indentUnit(i, prefix)); err != nil {
		return string(entry)
	}
	return b.String()
}

// indentUnit guesses the file's indentation step from element i's own
// layout: the indentation of its first inner line minus the element's. It
// falls back to a tab or two spaces, following the prefix.
func (c *conflist) indentUnit(i int, prefix string) string {
	e := c.elems[i]
	body := c.b[e.start:e.end]
	if nl := bytes.IndexByte(body, '\n'); nl >= 0 {
		rest := body[nl+1:]
		n := 0
		for n < len(rest) && (rest[n] == ' ' || rest[n] == '\t') {
			n++
		}
		inner := string(rest[:n])
		if len(inner) > len(prefix) && strings.HasPrefix(inner, prefix) {
			return inner[len(prefix):]
		}
	}
	if strings.Contains(prefix, "\t") {
		return "\t"
	}
	return "  "
}

// convert turns a single-plugin .conf into the bytes of a .conflist holding
// that plugin and then entry, as libcni's ConfListFromConf does in memory:
// the list takes the conf's "name" and "cniVersion", and the plugin is the
// whole original object, re-indented but otherwise unchanged.
func convert(conf []byte, name, cniVersion string, entry []byte) ([]byte, error) {
	n, err := json.Marshal(name)
	if err != nil {
		return nil, fmt.Errorf("encoding name: %w", err)
	}
	v, err := json.Marshal(cniVersion)
	if err != nil {
		return nil, fmt.Errorf("encoding cniVersion: %w", err)
	}
	var b bytes.Buffer
	b.WriteString("{\n  \"cniVersion\": ")
	b.Write(v)
	b.WriteString(",\n  \"name\": ")
	b.Write(n)
	b.WriteString(",\n  \"plugins\": [\n    ")
	if err := json.Indent(&b, bytes.TrimSpace(conf), "    ", "  "); err != nil {
		return nil, fmt.Errorf("re-indenting the plugin: %w", err)
	}
	b.WriteString(",\n    ")
	if err := json.Indent(&b, entry, "    ", "  "); err != nil {
		return nil, fmt.Errorf("indenting fibguard's entry: %w", err)
	}
	b.WriteString("\n  ]\n}\n")
	return b.Bytes(), nil
}

func splice(b []byte, from, to int, text string) []byte {
	out := make([]byte, 0, len(b)-(to-from)+len(text))
	out = append(out, b[:from]...)
	out = append(out, text...)
	return append(out, b[to:]...)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// valueEnd returns the end of the JSON value that starts at b[i]. b must be
// valid JSON (json.Valid): the scan relies on it and does not check syntax.
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
		return len(b)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = valueEnd(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	default: // a number, true, false or null
		j := i
		for j < len(b) && !isSpace(b[j]) && b[j] != ',' && b[j] != ']' && b[j] != '}' {
			j++
		}
		return j
	}
}
