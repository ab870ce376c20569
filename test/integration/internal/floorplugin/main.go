// Command floorplugin is the physical floor of a chained CNI plugin for
// BenchmarkADD: the least a Go plugin can do and still be chained. It
// reads its configuration on stdin and, for ADD, prints the prevResult it
// was given; for every other command it prints nothing (VERSION: the
// versions it takes). It imports only encoding/json and os, so what it
// costs is the exec of a static Go binary, the Go runtime's start and one
// small JSON decode: what no plugin written in Go can go below.
//
// With FIBGUARD_PHASES set, as BenchmarkADDPhases sets it, it appends the
// wall-clock times of its start (main entered) and its result (printed)
// to that file, in the plugin's format, so that the floor's start and exit
// stand beside fibguard's.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"
)

func main() {
	started := time.Now().UnixNano()
	run()
	if path := os.Getenv("FIBGUARD_PHASES"); path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err == nil {
			_, _ = fmt.Fprintf(f, `{"marks":[{"name":"start","at":%d},{"name":"result","at":%d}]}`+"\n", started, time.Now().UnixNano())
			_ = f.Close()
		}
	}
}

func run() {
	switch os.Getenv("CNI_COMMAND") {
	case "ADD":
		var conf struct {
			PrevResult json.RawMessage `json:"prevResult"`
		}
		in, err := io.ReadAll(os.Stdin)
		if err == nil {
			err = json.Unmarshal(in, &conf)
		}
		if err != nil || len(conf.PrevResult) == 0 {
			_, _ = os.Stdout.WriteString(`{"cniVersion":"1.0.0","code":7,"msg":"floorplugin: no prevResult"}`)
			os.Exit(1)
		}
		_, _ = os.Stdout.Write(conf.PrevResult)
	case "VERSION":
		_, _ = os.Stdout.WriteString(`{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0","1.1.0"]}`)
	}
}
