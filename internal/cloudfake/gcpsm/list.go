// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package gcpsm

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	smpb "cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
)

// term is one term of a ListSecrets filter: name:<substring> (the Secret's
// resource name contains it) or labels.<key>=<value>.
type term struct {
	label      bool
	key, value string
}

func (t term) match(sec *smpb.Secret) bool {
	if t.label {
		v, ok := sec.GetLabels()[t.key]
		return ok && v == t.value
	}
	return strings.Contains(sec.GetName(), t.value)
}

// parseFilter reads the subset of List-operation filtering the fake
// serves: terms joined by AND.
func parseFilter(f string) ([]term, error) {
	if strings.TrimSpace(f) == "" {
		return nil, nil
	}
	var terms []term
	for _, t := range strings.Split(f, " AND ") {
		t = strings.TrimSpace(t)
		if v, ok := strings.CutPrefix(t, "name:"); ok && v != "" && !strings.ContainsAny(v, " \"*()~") {
			terms = append(terms, term{value: v})
			continue
		}
		if kv, ok := strings.CutPrefix(t, "labels."); ok {
			if k, v, ok := strings.Cut(kv, "="); ok && labelKeyRE.MatchString(k) && labelRE.MatchString(v) {
				terms = append(terms, term{label: true, key: k, value: v})
				continue
			}
		}
		return nil, status.Errorf(codes.InvalidArgument, "the fake understands only filters of name:<substring> and labels.<key>=<value> terms joined by AND, not %q", t)
	}
	return terms, nil
}

// ListSecrets implements the service: the project's secrets matching the
// filter, sorted by name, page_size (or the fake's page size, if smaller
// or page_size is 0) at a time; the page token is the last name returned,
// so secrets created or deleted between pages neither shift nor repeat
// the others.
func (s *Server) ListSecrets(_ context.Context, req *smpb.ListSecretsRequest) (*smpb.ListSecretsResponse, error) {
	if req.GetParent() != "projects/"+s.project {
		return nil, status.Errorf(codes.InvalidArgument, "the fake lists the secrets of projects/%s only, not of %q", s.project, req.GetParent())
	}
	terms, err := parseFilter(req.GetFilter())
	if err != nil {
		return nil, err
	}
	after := ""
	if tok := req.GetPageToken(); tok != "" {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || !strings.HasPrefix(string(raw), req.GetParent()+"/secrets/") {
			return nil, status.Error(codes.InvalidArgument, "Invalid page token.")
		}
		after = string(raw)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []*smpb.Secret
	for _, sec := range s.secrets {
		if !slices.ContainsFunc(terms, func(t term) bool { return !t.match(sec.pb) }) {
			all = append(all, sec.pb)
		}
	}
	slices.SortFunc(all, func(a, b *smpb.Secret) int { return strings.Compare(a.GetName(), b.GetName()) })
	size := s.pageSize
	if n := int(req.GetPageSize()); n > 0 && n < size {
		size = n
	}
	start, _ := slices.BinarySearchFunc(all, after, func(sec *smpb.Secret, name string) int {
		if sec.GetName() <= name {
			return -1
		}
		return 1
	})
	resp := &smpb.ListSecretsResponse{TotalSize: int32(len(all))}
	end := min(start+size, len(all))
	for _, sec := range all[start:end] {
		resp.Secrets = append(resp.Secrets, proto.Clone(sec).(*smpb.Secret))
	}
	if end < len(all) {
		resp.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(all[end-1].GetName()))
	}
	return resp, nil
}
