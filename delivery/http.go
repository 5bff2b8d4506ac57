// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package delivery

import (
	"encoding/json"
	"net/http"
)

// Handler serves the agent's health endpoints:
//   - /healthz: 200 while the process runs;
//   - /readyz: 200 once every Secret was delivered to every sink, else 503;
//   - /status: JSON, one SecretStatus per Secret (versions, serials, errors).
//
// Nothing it serves is secret: errors never hold key material or tokens.
func Handler(a *Agent) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.Ready() {
			http.Error(w, "not every Secret has been delivered yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"ready": a.Ready(), "secrets": a.Status()})
	})
	return mux
}
