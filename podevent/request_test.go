package podevent

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadRequest(t *testing.T) {
	ev := Event{Pod: Pod{"default", "web-0", "u"}, Reason: ReasonRejected, Message: "FG001 x", Action: "ADD", Node: "node-1"}
	good := Request{Version: RequestVersion, Kubeconfig: "/etc/cni/net.d/fibguard-kubeconfig",
		Deadline: time.Unix(1700000000, 0), Events: []Event{ev}}
	encode := func(r Request) string {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	with := func(change func(*Request)) string {
		r := good
		r.Events = append([]Event(nil), good.Events...)
		change(&r)
		return encode(r)
	}
	for _, tc := range []struct {
		name, in string
		want     string // part of the error; "": valid
	}{
		{"valid", encode(good), ""},
		{"other version", with(func(r *Request) { r.Version = 2 }), "version 2"},
		{"relative kubeconfig", with(func(r *Request) { r.Kubeconfig = "kubeconfig" }), "not an absolute path"},
		{"no deadline", with(func(r *Request) { r.Deadline = time.Time{} }), "deadline"},
		{"no events", with(func(r *Request) { r.Events = nil }), "events: 0"},
		{"too many events", with(func(r *Request) { r.Events = make([]Event, MaxEvents+1) }), "events: 17"},
		{"invalid event", with(func(r *Request) { r.Events[0].Node = "" }), "events[0]"},
		{"unknown field", strings.Replace(encode(good), `{`, `{"x":1,`, 1), "unknown field"},
		{"two values", encode(good) + encode(good), "more than one"},
		{"not JSON", "{", "decode"},
		{"too large", strings.Repeat(" ", MaxRequestSize+1), "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadRequest(strings.NewReader(tc.in))
			if tc.want == "" {
				if err != nil || got.Kubeconfig != good.Kubeconfig || !got.Deadline.Equal(good.Deadline) || got.Events[0] != ev {
					t.Errorf("ReadRequest = %+v, %v; want %+v", got, err, good)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ReadRequest: %v, want an error about %q", err, tc.want)
			}
		})
	}
}

func TestFindBinary(t *testing.T) {
	empty, withBin, notExec := t.TempDir(), t.TempDir(), t.TempDir()
	for dir, mode := range map[string]os.FileMode{withBin: 0o755, notExec: 0o644} {
		if err := os.WriteFile(filepath.Join(dir, EventBinary), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := FindBinary("", empty, notExec, withBin); err != nil || got != filepath.Join(withBin, EventBinary) {
		t.Errorf("FindBinary = %q, %v; want the one in %s", got, err, withBin)
	}
	_, err := FindBinary(empty, notExec)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), empty) || !strings.Contains(err.Error(), notExec) {
		t.Errorf("FindBinary without one: %v, want ErrNotExist naming both directories", err)
	}
}

// FuzzReadRequest: whatever the plugin's stdin to the event binary holds,
// ReadRequest never panics; it refuses with an error that says it is
// about the event request, or accepts a request that survives a round
// trip: encoded again, it reads back the same, byte for byte.
func FuzzReadRequest(f *testing.F) {
	f.Add(`{"version":1,"kubeconfig":"/k","deadline":"2030-01-01T00:00:00Z","events":[{"pod":{"namespace":"a","name":"b"},"reason":"PodNetworkRejected","node":"n"}]}`)
	f.Add(`{"version":1,"kubeconfig":"/k","deadline":"2030-01-01T00:00:00+01:00","userAgent":"x","events":[{"pod":{"namespace":"a","name":"b","uid":"u"},"reason":"PodNetworkWarning","message":"FG001 \u00e9","action":"CHECK","node":"n","time":"2030-01-01T00:00:00.5Z"}]}`)
	f.Add(`{"version":1}{"version":1}`)
	f.Add(`{"version":1,"events":[{"pod":{"namespace":"a","name":"b"},"kind":"Node","reason":"R","node":"n"}]}`)
	f.Fuzz(func(t *testing.T, s string) {
		req, err := ReadRequest(strings.NewReader(s))
		if err != nil {
			if msg := err.Error(); !strings.Contains(msg, "event request") {
				t.Fatalf("refused %q with an error that does not say what it is about: %v", s, err)
			}
			return
		}
		enc, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("cannot encode the accepted %q: %v", s, err)
		}
		again, err := ReadRequest(bytes.NewReader(enc))
		if err != nil {
			t.Fatalf("accepted %q, but not its own encoding %s: %v", s, enc, err)
		}
		if enc2, err := json.Marshal(again); err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip changed the request:\n%s\n%s (%v)", enc, enc2, err)
		}
	})
}
