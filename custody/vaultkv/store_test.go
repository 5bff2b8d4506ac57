// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package vaultkv

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
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
			cfg := vaultapi.DefaultConfig()
			cfg.Address = srv.URL
			cfg.MaxRetries = 0
			c, err := vaultapi.NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			c.SetToken("t")
			s, err := New(c, Options{Timeout: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			err = tc.call(s)
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
