package fib

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"runtime"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// SnapshotVersion is the version of the snapshot format that Encode writes
// and Decode reads. docs/snapshot-format.md describes it.
const SnapshotVersion = "fibguard.snapshot/v1"

// snapshot is the file format: a version line and the model, with each
// route as one line of text (Route.MarshalText).
type snapshot struct {
	Version string `json:"version"`
	*State
	Routes []string `json:"routes"`
}

// snapshotIn is a snapshot as Decode reads it: the routes are kept as the
// raw JSON array, whose strings are parsed straight into a slice of the
// right size, on every core — a million routes never become a million
// separate strings or a growing slice of Route values.
type snapshotIn struct {
	Version string `json:"version"`
	*State
	// These shadow the State's fields of the same names, so that no more
	// than MaxSnapshotItems of each are decoded: a few bytes of JSON ("{}")
	// make a struct of a hundred or more.
	Links  linkList        `json:"links"`
	Addrs  addrList        `json:"addrs"`
	Rules  ruleList        `json:"rules"`
	Conf   confMap         `json:"conf"`
	Routes json.RawMessage `json:"routes"`
}

// Encode writes the model as a snapshot.
func (m *Model) Encode(w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetIndent("", " ")
	s := snapshot{Version: SnapshotVersion, State: &m.st, Routes: make([]string, len(m.st.Routes))}
	for i := range m.st.Routes {
		text, err := m.st.Routes[i].MarshalText()
		if err != nil {
			return fmt.Errorf("encode snapshot: %w", err)
		}
		s.Routes[i] = string(text)
	}
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}

// Decode reads a snapshot written by Encode. Unknown fields, another
// version, and any inconsistency that Validate finds are errors.
//
// The routes array, nearly all of a large snapshot, is cut out of the
// document and read by jsonStrings: encoding/json would scan its bytes
// twice, a byte at a time. The rest goes through encoding/json as before.
func Decode(r io.Reader) (*Model, error) {
	raw, err := readAll(r)
	if err != nil {
		return nil, fmt.Errorf("decode snapshot: %w", err)
	}
	return decode(raw, true)
}

// decode is Decode of the snapshot in raw; without cut, the whole document
// goes through encoding/json (for tests comparing both ways).
func decode(raw []byte, cut bool) (*Model, error) {
	doc, routes := raw, []byte(nil)
	if start, end, ok := routesValue(raw); ok && cut {
		doc = slices.Concat(raw[:start], []byte("null"), raw[end:])
		routes = raw[start:end]
	}
	s := snapshotIn{State: &State{}}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w", err)
	}
	if s.Version != SnapshotVersion {
		return nil, fmt.Errorf("decode snapshot: version %q, want %q", s.Version, SnapshotVersion)
	}
	s.State.Links, s.State.Addrs, s.State.Rules, s.State.Conf = s.Links, s.Addrs, s.Rules, s.Conf
	if routes == nil {
		routes = s.Routes
	}
	lines, err := jsonStrings(routes, MaxSnapshotRoutes)
	if err != nil {
		return nil, fmt.Errorf("decode snapshot: routes: %w", err)
	}
	if s.State.Routes, err = parseRoutes(lines); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w", err)
	}
	m := FromState(*s.State)
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w", err)
	}
	return m, nil
}

// readAll is io.ReadAll into a buffer of the input's size when the reader
// knows it (a file, a bytes.Reader), instead of one doubled again and
// again.
func readAll(r io.Reader) ([]byte, error) {
	size := 0
	switch r := r.(type) {
	case interface{ Len() int }:
		size = r.Len()
	case interface{ Stat() (fs.FileInfo, error) }:
		if fi, err := r.Stat(); err == nil && fi.Mode().IsRegular() {
			size = int(fi.Size())
		}
	}
	if size > MaxSnapshotSize {
		return nil, ErrSnapshotTooLarge
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(r, MaxSnapshotSize+1)); err != nil {
		return nil, err
	}
	if buf.Len() > MaxSnapshotSize {
		return nil, ErrSnapshotTooLarge
	}
	return buf.Bytes(), nil
}

// Limits of a snapshot, so that decoding one takes bounded memory, whatever
// it holds: without them a snapshot of 21 MB of empty rules ("{},") took 4
// GB. MaxSnapshotSize bounds the bytes Decode reads (a reader fed an
// endless stream stops there); a full Internet table of both families,
// about 1.2 million routes, is some 80 MB. MaxSnapshotRoutes is about three
// such tables; MaxSnapshotItems bounds each of the links, addresses, rules
// and devices' settings, far above any node's.
const (
	MaxSnapshotSize   = 256 << 20
	MaxSnapshotRoutes = 4_000_000
	MaxSnapshotItems  = 100_000
)

// ErrSnapshotTooLarge is Decode's error for an input past MaxSnapshotSize.
var ErrSnapshotTooLarge = fmt.Errorf("larger than %d bytes (256 MiB), the most a snapshot may be", MaxSnapshotSize)

// ErrSnapshotTooMany is Decode's error for a list past MaxSnapshotRoutes
// or MaxSnapshotItems; the error wrapping it names the list and the limit.
var ErrSnapshotTooMany = errors.New("more items than a snapshot may hold")

// The lists of a snapshot other than the routes, decoded an item at a time
// up to MaxSnapshotItems.
type (
	linkList []Link
	addrList []Address
	ruleList []Rule
	confMap  map[string]DevConf
)

func (l *linkList) UnmarshalJSON(b []byte) error { return decodeList(b, (*[]Link)(l), "links") }
func (l *addrList) UnmarshalJSON(b []byte) error { return decodeList(b, (*[]Address)(l), "addrs") }
func (l *ruleList) UnmarshalJSON(b []byte) error { return decodeList(b, (*[]Rule)(l), "rules") }

// decodeList decodes the JSON array b into *list, as encoding/json would
// (null is nil, unknown fields are errors), but fails at the
// MaxSnapshotItems+1st item instead of decoding it.
func decodeList[T any](b []byte, list *[]T, name string) error {
	*list = nil
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if ok, err := openValue(dec, '[', name); !ok {
		return err
	}
	for dec.More() {
		if len(*list) == MaxSnapshotItems {
			return fmt.Errorf("%s: %w: more than %d", name, ErrSnapshotTooMany, MaxSnapshotItems)
		}
		var v T
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("%s[%d]: %w", name, len(*list), err)
		}
		*list = append(*list, v)
	}
	return nil
}

// UnmarshalJSON decodes the devices' settings as encoding/json would, but
// fails at the MaxSnapshotItems+1st device instead of decoding it.
func (c *confMap) UnmarshalJSON(b []byte) error {
	*c = nil
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if ok, err := openValue(dec, '{', "conf"); !ok {
		return err
	}
	*c = confMap{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("conf: %w", err)
		}
		name, _ := tok.(string) // the key of an object is always a string
		if _, seen := (*c)[name]; !seen && len(*c) == MaxSnapshotItems {
			return fmt.Errorf("conf: %w: more than %d devices", ErrSnapshotTooMany, MaxSnapshotItems)
		}
		var v DevConf
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("conf[%q]: %w", name, err)
		}
		(*c)[name] = v
	}
	return nil
}

// openValue reads the first token of a list or object: false with no
// error for null, false with an error for anything but open.
func openValue(dec *json.Decoder, open json.Delim, name string) (bool, error) {
	tok, err := dec.Token()
	switch {
	case err != nil:
		return false, fmt.Errorf("%s: %w", name, err)
	case tok == nil:
		return false, nil
	case tok != open:
		return false, fmt.Errorf("%s: %v where %v was expected", name, tok, open)
	}
	return true, nil
}

// routesValue finds the value of the top-level "routes" member of a JSON
// object (the last one, matched as encoding/json matches field names) and
// returns where it starts and ends. It reports false for anything it does
// not follow — not an object, a routes member in no array — and Decode
// then leaves the whole document to encoding/json.
func routesValue(raw []byte) (start, end int, ok bool) {
	i := skipSpaceBytes(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return 0, 0, false
	}
	i = skipSpaceBytes(raw, i+1)
	for i < len(raw) && raw[i] == '"' {
		keyEnd, ok := skipString(raw, i)
		if !ok {
			return 0, 0, false
		}
		var key string
		if err := json.Unmarshal(raw[i:keyEnd], &key); err != nil {
			return 0, 0, false
		}
		i = skipSpaceBytes(raw, keyEnd)
		if i >= len(raw) || raw[i] != ':' {
			return 0, 0, false
		}
		i = skipSpaceBytes(raw, i+1)
		valEnd, ok := skipValue(raw, i)
		if !ok {
			return 0, 0, false
		}
		if strings.EqualFold(key, "routes") {
			if raw[i] != '[' {
				return 0, 0, false
			}
			start, end = i, valEnd
		}
		i = skipSpaceBytes(raw, valEnd)
		if i < len(raw) && raw[i] == ',' {
			i = skipSpaceBytes(raw, i+1)
			continue
		}
		if i < len(raw) && raw[i] == '}' && end > 0 {
			return start, end, true
		}
		return 0, 0, false
	}
	return 0, 0, false
}

// skipString returns the end of the JSON string that starts at raw[i].
func skipString(raw []byte, i int) (int, bool) {
	for j := i + 1; j < len(raw); {
		k := bytes.IndexByte(raw[j:], '"')
		if k < 0 {
			return 0, false
		}
		j += k
		// The quote ends the string unless an odd number of backslashes
		// escapes it.
		n := 0
		for raw[j-1-n] == '\\' {
			n++
		}
		if n%2 == 0 {
			return j + 1, true
		}
		j++
	}
	return 0, false
}

// skipValue returns the end of the JSON value that starts at raw[i],
// following strings and brackets only: encoding/json checks the rest.
func skipValue(raw []byte, i int) (int, bool) {
	depth := 0
	for j := i; j < len(raw); j++ {
		switch c := raw[j]; c {
		case '"':
			end, ok := skipString(raw, j)
			if !ok {
				return 0, false
			}
			j = end - 1
		case '[', '{':
			depth++
		case ']', '}':
			if depth == 0 {
				// A literal ends where its container does.
				return j, j > i
			}
			depth--
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return j, j > i
			}
		}
		if depth == 0 && (raw[j] == ']' || raw[j] == '}' || raw[j] == '"') {
			return j + 1, true
		}
	}
	return 0, false
}

func skipSpaceBytes(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// parseRoutes parses route lines into a slice of their size, splitting
// the work between the cores; the error is that of the first bad line.
func parseRoutes(lines []string) ([]Route, error) {
	routes := make([]Route, len(lines))
	workers := min(runtime.GOMAXPROCS(0), 1+len(lines)/20000)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for k := range workers {
		lo, hi := k*len(lines)/workers, (k+1)*len(lines)/workers
		wg.Go(func() {
			w := newLineParser()
			for i := lo; i < hi; i++ {
				if err := routes[i].parse(lines[i], w); err != nil {
					errs[k] = fmt.Errorf("route %d %q: %w", i, lines[i], err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return routes, nil
}

// jsonStrings returns the strings of a JSON array of strings (null or
// nothing is no strings), as substrings of one copy of raw where they are
// plain ASCII without escapes; encoding/json reads the others. More than
// limit strings are an error wrapping ErrSnapshotTooMany.
func jsonStrings(raw []byte, limit int) ([]string, error) {
	text := strings.TrimSpace(string(raw))
	if text == "" || text == "null" {
		return nil, nil
	}
	if text[0] != '[' {
		return nil, errors.New("not an array of strings")
	}
	if text[len(text)-1] != ']' {
		return nil, errors.New("not a JSON array")
	}
	out := make([]string, 0, min(strings.Count(text, `"`)/2, limit))
	i := skipSpace(text, 1)
	if i < len(text) && text[i] == ']' {
		return out, nil
	}
	for i < len(text) {
		if len(out) == limit {
			return nil, fmt.Errorf("%w: more than %d", ErrSnapshotTooMany, limit)
		}
		if text[i] != '"' {
			return nil, fmt.Errorf("element %d is not a string", len(out))
		}
		j, escaped := i+1, false
		for j < len(text) && text[j] != '"' {
			switch {
			case text[j] == '\\':
				escaped = true
				j++
			case text[j] < 0x20 || text[j] >= utf8.RuneSelf:
				// Control characters are errors and invalid UTF-8 is
				// replaced: encoding/json decides.
				escaped = true
			}
			j++
		}
		if j >= len(text) {
			return nil, errors.New("unterminated string")
		}
		elem := text[i+1 : j]
		if escaped {
			if err := json.Unmarshal([]byte(text[i:j+1]), &elem); err != nil {
				return nil, fmt.Errorf("element %d: %w", len(out), err)
			}
		}
		out = append(out, elem)
		i = skipSpace(text, j+1)
		if i < len(text) && text[i] == ']' {
			return out, nil
		}
		if i >= len(text) || text[i] != ',' {
			return nil, fmt.Errorf("after element %d: not a list", len(out)-1)
		}
		i = skipSpace(text, i+1)
	}
	return nil, errors.New("unterminated array")
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}
