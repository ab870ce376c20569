package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"regexp"
	"strings"
)

// ParseAddr reads an IP address given as what ("destination", "--from"),
// and says in words what is wrong with a bad one: the value and what an
// address looks like, never the Go parser's own text.
func ParseAddr(what, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err == nil {
		return a, nil
	}
	return netip.Addr{}, Reword(err, "%s %q is not an IP address: %s", what, s, addrHint(s))
}

// addrHint says what an address of the family s looks like.
func addrHint(s string) string {
	switch {
	case s == "":
		return "it is empty"
	case strings.Contains(s, "/"):
		return "want an address, not a prefix"
	case strings.Contains(s, ":"):
		return "want an IPv6 address such as fd00::5 (a zone only with a link-local address, fe80::1%eth0)"
	case strings.Count(s, ".") == 3:
		return "want an IPv4 address: four numbers from 0 to 255 separated by dots, such as 10.244.0.5, without leading zeros"
	}
	return "want an IPv4 address such as 10.244.0.5 or an IPv6 address such as fd00::5"
}

// PathError says what went wrong with an input file in one phrase: "what
// path: reason", with the path said once. The *fs.PathError of the system
// call (which names the path again, and the call) is replaced by its
// cause, and of a message that names the path several times ("load:
// network namespace X: open network namespace X: not a namespace") only
// what follows the last mention is kept; errors.Is and errors.As still
// see the whole chain.
func PathError(what, path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return Reword(err, "%s %s: %s", what, path, reason(pe.Err))
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, path+": "); i >= 0 {
		msg = msg[i+len(path)+2:]
	} else if strings.Contains(msg, path) {
		return err
	}
	return Reword(err, "%s %s: %s", what, path, msg)
}

// reason is a system error's text, with "no such file or directory" said
// as people do.
func reason(err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return "does not exist"
	}
	return err.Error()
}

// JSONSyntax says where b stops being JSON: the line and column of the
// first error, and what was found there; nil for valid JSON.
func JSONSyntax(b []byte) error {
	if json.Valid(b) {
		return nil
	}
	var v any
	err := json.Unmarshal(b, &v)
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return nil
	}
	line, col := position(b, se.Offset)
	return Reword(err, "not valid JSON at line %d, column %d: %s", line, col, se.Error())
}

// position turns the byte offset of a json.SyntaxError (the count of
// bytes read, the bad one included) into a line and column, both from 1.
func position(b []byte, off int64) (int, int) {
	if len(b) == 0 {
		return 1, 1
	}
	off = min(max(off, 1), int64(len(b)))
	before := b[:off-1]
	line := bytes.Count(before, []byte("\n")) + 1
	return line, int(off-1) - bytes.LastIndexByte(before, '\n')
}

// goParse matches what net/netip's parsers say about a bad value, one
// call or nested ones: `ParseAddr("10.0.0.300"): IPv4 field has value
// >255`, `netip.ParsePrefix("1.2.3.400/24"): ParseAddr("1.2.3.400"): ...`.
var (
	goParse     = regexp.MustCompile(`(?:(?:netip\.)?Parse(?:Addr|Prefix)\("(?:[^"\\]|\\.)*"\): )+[^:;()]*`)
	goParseCall = regexp.MustCompile(`Parse(Addr|Prefix)\("((?:[^"\\]|\\.)*)"\): `)
)

// goReasons are netip's reasons, in words.
var goReasons = map[string]string{
	"IPv4 field has value >255":              "a number above 255",
	"IPv4 field has octet with leading zero": "a number with a leading zero",
	"unable to parse IP":                     "not an address",
	"no '/'":                                 "no /length",
	"bad bits after slash":                   "a bad prefix length",
	"prefix length out of range":             "a prefix length out of range",
	"IPv4 address too short":                 "fewer than four numbers",
	"IPv4 address too long":                  "more than four numbers",
}

// Unparse rewrites, in an error from a parser fibguardctl calls, what
// net/netip said about a bad address or prefix into fibguardctl's words
// — `"10.0.0.300" is not a valid address: a number above 255` — and
// keeps the rest of the message; errors.Is and errors.As still see the
// cause.
func Unparse(err error) error {
	msg := err.Error()
	if !goParse.MatchString(msg) {
		return err
	}
	msg = goParse.ReplaceAllStringFunc(msg, func(m string) string {
		calls := goParseCall.FindAllStringSubmatchIndex(m, -1)
		first, last := calls[0], calls[len(calls)-1]
		what, value := strings.ToLower(m[first[2]:first[3]]), m[first[4]:first[5]]
		if what == "addr" {
			what = "address"
		}
		reason := strings.TrimSpace(m[last[1]:])
		if r, ok := goReasons[reason]; ok {
			reason = r
		}
		return fmt.Sprintf("%q is not a valid %s (%s)", value, what, reason)
	})
	return Reword(err, "%s", msg)
}
