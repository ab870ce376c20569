// Command probe is the e2e suite's pod payload (image
// localhost/fibguard-e2e/probe:1.0): an HTTP server on :8080 that answers who
// it is, and fetches another URL on request, so that the suite can check
// node → pod and pod → pod reachability with plain HTTP, without kubectl exec.
//
//	GET /             "<hostname> <if>=<addr> ..."
//	GET /fetch?url=U  the body of U fetched from inside this pod (3 s timeout);
//	                  502 with the error when it fails
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintln(w, host, addrs())
	})
	mux.HandleFunc("GET /fetch", fetch)
	srv := &http.Server{Addr: ":8080", Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Printf("probe %s serving on :8080: %s", host, addrs())
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("probe: %v", err)
	}
}

// fetch GETs the url query parameter from inside the pod and relays the body.
func fetch(w http.ResponseWriter, r *http.Request) {
	target := r.URL.Query().Get("url")
	if target == "" {
		http.Error(w, "probe: missing url parameter", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		http.Error(w, "probe: "+err.Error(), http.StatusBadRequest)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, "probe: fetch: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		http.Error(w, "probe: fetch: "+err.Error(), http.StatusBadGateway)
		return
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

// addrs lists the pod's interface addresses as name=prefix.
func addrs() string {
	ifs, err := net.Interfaces()
	if err != nil {
		return "interfaces: " + err.Error()
	}
	var out []string
	for _, i := range ifs {
		as, err := i.Addrs()
		if err != nil {
			continue
		}
		for _, a := range as {
			out = append(out, i.Name+"="+a.String())
		}
	}
	return strings.Join(out, " ")
}
