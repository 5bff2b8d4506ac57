// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package deliverytest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Failure is an error answer a fake gives instead of handling a request:
// the status and the gateway's error message.
type Failure struct {
	Status int
	Msg    string
}

// Failures is a queue of Failures. Its zero value is empty. It is not safe
// for concurrent use: a fake keeps it under its own lock.
type Failures struct {
	skip  int
	queue []Failure
}

// Add queues fs, one for each of the next requests.
func (q *Failures) Add(fs ...Failure) {
	q.queue = append(q.queue, fs...)
}

// AddAfter lets n requests through, then queues fs for the next ones.
func (q *Failures) AddAfter(n int, fs ...Failure) {
	q.skip = n
	q.queue = append(q.queue, fs...)
}

// Next returns the Failure to answer the current request with, if any. A
// request let through by AddAfter counts only while Failures are queued.
func (q *Failures) Next() (Failure, bool) {
	if len(q.queue) == 0 {
		return Failure{}, false
	}
	if q.skip > 0 {
		q.skip--
		return Failure{}, false
	}
	next := q.queue[0]
	q.queue = q.queue[1:]
	return next, true
}

// Gate lets a fake hold requests, to test the sinks' timeouts. Its zero
// value lets every request through.
type Gate struct {
	mu     sync.Mutex
	closed chan struct{}
}

// Hold makes every request wait until t ends (or its client gives up).
func (g *Gate) Hold(t testing.TB) {
	ch := make(chan struct{})
	g.mu.Lock()
	g.closed = ch
	g.mu.Unlock()
	t.Cleanup(func() { close(ch) })
}

// Wait blocks while g holds requests. It returns false if r's client gave
// up first: the fake must then not answer.
func (g *Gate) Wait(r *http.Request) bool {
	g.mu.Lock()
	ch := g.closed
	g.mu.Unlock()
	if ch == nil {
		return true
	}
	select {
	case <-ch:
		return true
	case <-r.Context().Done():
		return false
	}
}

// ReadJSON reads r's body whole; body is its decoding when it is a JSON
// object, nil otherwise.
func ReadJSON(r *http.Request) (raw []byte, body map[string]any) {
	raw, _ = io.ReadAll(r.Body)
	_ = json.Unmarshal(raw, &body)
	return raw, body
}

// WriteJSON answers status with v as JSON (no body when v is nil).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// JSONCopy returns v encoded as JSON and decoded again: a deep copy with
// the types a decoded JSON body has (numbers are float64), as a gateway
// that keeps its configuration as JSON hands it back. A v that encodes as
// null gives nil.
func JSONCopy(v any) map[string]any {
	js, _ := json.Marshal(v)
	var out map[string]any
	_ = json.Unmarshal(js, &out)
	return out
}

// ClosedURL returns the URL of an HTTP server that has already stopped:
// a gateway that refuses connections.
func ClosedURL() string {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	return closed.URL
}
