// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package vaultkv

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keyward-io/keyward/custody"
)

// The real Vault is exercised in store_integration_test.go; these cover
// option validation and answers a healthy dev server does not give.

func TestNewOptions(t *testing.T) {
	t.Parallel()
	c, err := vaultapi.NewClient(&vaultapi.Config{Address: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		opts     Options
		wantErr  string
		wantPath string
	}{
		{name: "defaults", wantPath: "custody/tls/ns/s"},
		{name: "custom", opts: Options{Mount: "/kv/", Prefix: "certs/", MaxVersions: 20}, wantPath: "kv/certs/ns/s"},
		{name: "too many versions", opts: Options{MaxVersions: 21}, wantErr: "custody store max versions 21 out of range 1..20"},
		{name: "negative versions", opts: Options{MaxVersions: -1}, wantErr: "custody store max versions -1 out of range 1..20"},
		{name: "blank mount", opts: Options{Mount: "/"}, wantErr: "custody store mount and prefix must not be blank"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := New(c, tc.opts)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Path("ns", "s"); got != tc.wantPath {
				t.Errorf("Path = %q, want %q", got, tc.wantPath)
			}
		})
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Errorf("nil client accepted")
	}
}

func TestStoreErrorAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		handler http.HandlerFunc
		call    func(s *Store) error
		want    string
		is      error
		isNot   []error
	}{
		{
			name: "server error on metadata",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = w.Write([]byte(`{"errors":["internal error"]}`))
			},
			call:  func(s *Store) error { _, err := s.Metadata(context.Background(), "ns", "web"); return err },
			want:  "reading custody metadata for secret ns/web: vault GET",
			isNot: []error{custody.ErrNotFound, custody.ErrConflict},
		},
		{
			name: "write without a version",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"data":{}}`))
			},
			call: func(s *Store) error {
				_, err := s.Put(context.Background(), custody.Record{Namespace: "ns", Name: "web"}, -1)
				return err
			},
			want: "writing custody record for secret ns/web: reading written version: unexpected <nil>",
		},
		{
			name: "check-and-set rejected",
			handler: func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet { // current version is live: no retry
					_, _ = w.Write([]byte(`{"data":{"current_version":2,"versions":{"2":{"deletion_time":"","destroyed":false}}}}`))
					return
				}
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"errors":["check-and-set parameter did not match the current version"]}`))
			},
			call: func(s *Store) error {
				_, err := s.Put(context.Background(), custody.Record{Namespace: "ns", Name: "web"}, 0)
				return err
			},
			want: "writing custody record for secret ns/web: vault PUT",
			is:   custody.ErrConflict,
		},
		{
			name: "forbidden",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusForbidden)
				_, _ = w.Write([]byte(`{"errors":["1 error occurred:\n\t* permission denied\n\n"]}`))
			},
			call:  func(s *Store) error { return s.Delete(context.Background(), "ns", "web") },
			want:  "deleting custody record for secret ns/web: vault DELETE",
			isNot: []error{custody.ErrNotFound, custody.ErrConflict},
		},
		{
			name:    "bad name",
			handler: func(http.ResponseWriter, *http.Request) { panic("no request expected") },
			call:    func(s *Store) error { _, err := s.Metadata(context.Background(), "ns", "../x"); return err },
			want:    `reading custody metadata: invalid secret reference "ns"/"../x"`,
		},
		{
			name: "slow server",
			handler: func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
			},
			call: func(s *Store) error { _, err := s.Metadata(context.Background(), "ns", "web"); return err },
			want: "reading custody metadata for secret ns/web:",
			is:   context.DeadlineExceeded,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			s := storeAt(t, srv.URL, Options{Timeout: 200 * time.Millisecond})
			err := tc.call(s)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("err = %v, want prefix %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err does not wrap %v", tc.is)
			}
			for _, e := range tc.isNot {
				if errors.Is(err, e) {
					t.Errorf("err wraps %v", e)
				}
			}
		})
	}
}

// TestPutIsOneWrite checks the request a Put sends: one data write that
// carries the key, the certificate, the CA and the version's description,
// with check-and-set, and no other request (no custom metadata write).
func TestPutIsOneWrite(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var calls []string
	var body map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, r.Method+" "+r.URL.Path)
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("decoding the write: %v", err)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data":{"version":3,"created_time":"2026-12-05T04:00:00.123456789Z"}}`))
	}))
	defer srv.Close()
	s := storeAt(t, srv.URL, Options{})
	nb := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	rec := custody.Record{Namespace: "ns", Name: "web", Key: []byte("KEY"), Certificate: []byte("CRT"), CA: []byte("CA"),
		Meta: custody.Metadata{CertificateName: "web", IssuerName: "vault", IssuerKind: "VaultClusterIssuer",
			Serial: "0a1b", KeySHA256: "ab12", NotBefore: nb, NotAfter: nb.Add(48 * time.Hour)}}
	v, err := s.Put(context.Background(), rec, 2)
	if err != nil || v != 3 {
		t.Fatalf("Put = %d, %v", v, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 1 || calls[0] != "PUT /v1/custody/data/tls/ns/web" {
		t.Fatalf("requests = %q, want one PUT of custody/data/tls/ns/web", calls)
	}
	data, _ := body["data"].(map[string]any)
	opts, _ := body["options"].(map[string]any)
	if data["tls.key"] != "KEY" || data["tls.crt"] != "CRT" || data["ca.crt"] != "CA" || opts["cas"] != float64(2) {
		t.Errorf("write = %v", body)
	}
	want := map[string]any{
		"certificate=web": "", "issuer_name=vault": "", "issuer_kind=VaultClusterIssuer": "", "serial=0a1b": "",
		"key_sha256=ab12": "", "not_before=2026-12-01T00:00:00Z": "", "not_after=2026-12-03T00:00:00Z": "",
	}
	if got := data[DataDescription]; !reflect.DeepEqual(got, want) {
		t.Errorf("description = %v, want %v", got, want)
	}
	back, ok := described(want)
	back.Version = 0
	rec.Meta.Version = 0
	if !ok || back != rec.Meta {
		t.Errorf("described(describe(m)) = %+v, want %+v", back, rec.Meta)
	}
}

// storeAt is a Store on a Vault client for addr with token "t" and no
// retries.
func storeAt(t *testing.T, addr string, opts Options) *Store {
	t.Helper()
	cfg := vaultapi.DefaultConfig()
	cfg.Address = addr
	cfg.MaxRetries = 0
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken("t")
	s, err := New(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
