package envflag

import (
	"strings"
	"testing"
	"time"
)

// TestSet: the environment gives defaults, the command line wins, a bad
// variable and a stray argument are errors naming them.
func TestSet(t *testing.T) {
	env := map[string]string{"S": "from-env", "B": "true", "D": "3s"}
	s := New("x", func(k string) string { return env[k] })
	str := s.String("s", "S", "def", "a string")
	b := s.Bool("b", "B", false, "a bool")
	d := s.Duration("d", "D", time.Second, "a duration")
	if err := s.Parse([]string{"-d", "5s"}); err != nil {
		t.Fatal(err)
	}
	if *str != "from-env" || !*b || *d != 5*time.Second {
		t.Errorf("got %q %v %v", *str, *b, *d)
	}
	for _, tt := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"B": "maybe"}, nil, "B: strconv.ParseBool"},
		{map[string]string{"D": "soon"}, nil, "D: time: invalid duration"},
		{nil, []string{"extra"}, `unexpected arguments: ["extra"]`},
	} {
		s := New("x", func(k string) string { return tt.env[k] })
		s.Bool("b", "B", false, "")
		s.Duration("d", "D", 0, "")
		if err := s.Parse(tt.args); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("env %v args %v: %v, want %q", tt.env, tt.args, err, tt.want)
		}
	}
}
