package live

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fibguard/fibguard/internal/nstest"
)

// TestSubscribe makes each kind of change in a namespace of its own and
// requires the subscription to say it in words, in order; changes in
// another namespace are not seen, and Close unblocks a waiting Next.
func TestSubscribe(t *testing.T) {
	ns := nstest.New(t)
	other := nstest.New(t)
	if err := ns.Batch([]string{"link add br0 type bridge", "link set br0 addrgenmode none"}); err != nil {
		t.Fatal(err)
	}
	s, err := Subscribe(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	changes := make(chan Change, 100)
	done := make(chan error, 1)
	go func() {
		for {
			cs, err := s.Next()
			if err != nil && !errors.Is(err, ErrOverflow) {
				done <- err
				return
			}
			for _, c := range cs {
				changes <- c
			}
		}
	}()
	steps := []struct {
		cmd  string
		want string // a change whose text contains this must come
	}{
		{"link set br0 up", "link br0 set up"},
		{"addr add 10.244.0.5/32 dev br0", "address 10.244.0.5/32 added on br0"},
		{"route add 10.9.0.0/16 dev br0", "route 10.9.0.0/16 dev br0 table main proto boot scope link added"},
		{"route add 10.8.0.0/16 dev br0 table 100", "route 10.8.0.0/16 dev br0 table 100 proto boot scope link added"},
		{"rule add to 10.8.0.0/16 lookup 100 pref 100", "rule 100: from all to 10.8.0.0/16 lookup 100 added"},
		{"rule del pref 100", "rule 100: from all to 10.8.0.0/16 lookup 100 removed"},
		{"route del 10.9.0.0/16 dev br0", "route 10.9.0.0/16 dev br0 table main proto boot scope link removed"},
		{"addr del 10.244.0.5/32 dev br0", "address 10.244.0.5/32 removed from br0"},
		{"link set br0 down", "link br0 set down"},
		{"link add vx type veth peer name vy", "link vx added"},
		{"link del vx", "link vx removed"},
	}
	// A change in another namespace must not show up.
	if _, err := other.IP("link", "add", "zz0", "type", "bridge"); err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, step := range steps {
		if _, err := ns.IP(strings.Fields(step.cmd)...); err != nil {
			t.Fatalf("%s: %v", step.cmd, err)
		}
		seen, err := waitChange(changes, step.want)
		if err != nil {
			t.Fatalf("after `ip %s`: %v", step.cmd, err)
		}
		all = append(all, seen...)
	}
	for _, c := range all {
		if strings.Contains(c, "zz0") {
			t.Errorf("saw a change of another namespace: %s", c)
		}
	}
	s.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("Next after Close: %v, want os.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next still blocked 5 s after Close")
	}
}

// waitChange reads changes until one contains want and returns every
// text read; the others are skipped (the kernel announces side effects
// too, such as local routes).
func waitChange(changes <-chan Change, want string) ([]string, error) {
	var seen []string
	deadline := time.After(5 * time.Second)
	for {
		select {
		case c := <-changes:
			seen = append(seen, c.Text)
			if strings.Contains(c.Text, want) {
				return seen, nil
			}
		case <-deadline:
			return seen, errors.New("no change containing " + want + " within 5 s; saw " + strings.Join(seen, "; "))
		}
	}
}
