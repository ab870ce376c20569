package iproute

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// item is one object of an `ip -j` array. Its fields are kept raw because
// iproute2 marks flags by the presence of a key whose value is null, and so
// that an error can quote the offending value exactly as it was given.
type item struct {
	// name says which item this is in errors: "route 3", "link 2 address 1".
	name   string
	fields map[string]json.RawMessage
}

var errNotObject = errors.New("not a JSON object")

// decodeArray splits an `ip -j` dump into its items. Empty input (nothing
// was collected) and a JSON null are an empty list.
func decodeArray(b []byte, what string) ([]*item, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		return nil, fmt.Errorf("%s dump: %w", what, err)
	}
	items := make([]*item, len(raws))
	for i, raw := range raws {
		it, err := decodeItem(raw, fmt.Sprintf("%s %d", what, i))
		if err != nil {
			return nil, err
		}
		items[i] = it
	}
	return items, nil
}

func decodeItem(raw json.RawMessage, name string) (*item, error) {
	it := &item{name: name}
	if err := json.Unmarshal(raw, &it.fields); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if it.fields == nil {
		return nil, fmt.Errorf("%s: %w", name, errNotObject)
	}
	return it, nil
}

// has reports whether the key is present, whatever its value.
func (it *item) has(key string) bool {
	_, ok := it.fields[key]
	return ok
}

// flag reports whether a flag key is set. iproute2 prints a set flag as a
// key with the value null or true, and leaves an unset one out.
func (it *item) flag(key string) bool {
	raw, ok := it.fields[key]
	return ok && !bytes.Equal(bytes.TrimSpace(raw), []byte("false"))
}

// fail wraps err with the item's name and the key and value at fault.
func (it *item) fail(key string, err error) error {
	return fmt.Errorf("%s (%q:%s): %w", it.name, key, quote(it.fields[key]), err)
}

// missing reports a key that must be present.
func (it *item) missing(key string) error {
	return fmt.Errorf("%s: no %q", it.name, key)
}

// quote returns a raw JSON value compacted and shortened for an error.
func quote(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		b.Reset()
		b.Write(raw)
	}
	const maxQuote = 80
	if b.Len() > maxQuote {
		return string(b.Bytes()[:maxQuote]) + "..."
	}
	return b.String()
}

func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// str returns a string value; ok is false if the key is absent.
func (it *item) str(key string) (s string, ok bool, err error) {
	raw, ok := it.fields[key]
	if !ok {
		return "", false, nil
	}
	if isNull(raw) {
		return "", true, it.fail(key, errors.New("not a string"))
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", true, it.fail(key, err)
	}
	return s, true, nil
}

// needStr returns a string value that must be present.
func (it *item) needStr(key string) (string, error) {
	s, ok, err := it.str(key)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", it.missing(key)
	}
	return s, nil
}

// int returns an integer value within [lo, hi]; ok is false if the key is
// absent.
func (it *item) int(key string, lo, hi int64) (n int64, ok bool, err error) {
	raw, ok := it.fields[key]
	if !ok {
		return 0, false, nil
	}
	if isNull(raw) {
		return 0, true, it.fail(key, errors.New("not a number"))
	}
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, true, it.fail(key, err)
	}
	if n < lo || n > hi {
		return 0, true, it.fail(key, fmt.Errorf("out of range [%d, %d]", lo, hi))
	}
	return n, true, nil
}

// uint32 returns an unsigned 32-bit value; ok is false if the key is absent.
func (it *item) uint32(key string) (uint32, bool, error) {
	n, ok, err := it.int(key, 0, math.MaxUint32)
	return uint32(n), ok, err
}

// strs returns an array of strings; absent is empty.
func (it *item) strs(key string) ([]string, error) {
	raw, ok := it.fields[key]
	if !ok {
		return nil, nil
	}
	var ss []string
	if isNull(raw) {
		return nil, it.fail(key, errors.New("not an array"))
	}
	if err := json.Unmarshal(raw, &ss); err != nil {
		return nil, it.fail(key, err)
	}
	return ss, nil
}

// objects returns an array of objects as items named after this one; absent
// is empty.
func (it *item) objects(key, what string) ([]*item, error) {
	raw, ok := it.fields[key]
	if !ok {
		return nil, nil
	}
	var raws []json.RawMessage
	if isNull(raw) {
		return nil, it.fail(key, errors.New("not an array"))
	}
	if err := json.Unmarshal(raw, &raws); err != nil {
		return nil, it.fail(key, err)
	}
	items := make([]*item, len(raws))
	for i, r := range raws {
		sub, err := decodeItem(r, fmt.Sprintf("%s %s %d", it.name, what, i))
		if err != nil {
			return nil, err
		}
		items[i] = sub
	}
	return items, nil
}

// object returns a nested object as an item; ok is false if absent.
func (it *item) object(key string) (*item, bool, error) {
	raw, ok := it.fields[key]
	if !ok {
		return nil, false, nil
	}
	sub, err := decodeItem(raw, it.name+" "+key)
	if err != nil {
		return nil, true, it.fail(key, errNotObject)
	}
	return sub, true, nil
}
