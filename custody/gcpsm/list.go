// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package gcpsm

import (
	"context"
	"fmt"
	"strings"

	smpb "cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/iterator"

	"github.com/keyward-io/keyward/custody"
)

var _ custody.Lister = (*Store)(nil)

// List names the records of namespace: ListSecrets on the project with the
// filter name:<prefix ID>_<namespace>_ (Secret Manager's name: is a
// substring match), following page tokens, each page of up to
// listPageSize secrets bounded by Options.Timeout. Every secret ID is mapped back (RecordName; a hashed
// name through its keyward-record annotation, checked against the hash)
// and kept only if it is a record of exactly this namespace. It needs
// secretmanager.secrets.list on the project (deploy/gcp), which returns the
// secrets' labels and annotations, never a payload.
func (s *Store) List(ctx context.Context, namespace string) ([]string, error) {
	if err := custody.ValidateListNamespace(namespace); err != nil {
		return nil, err
	}
	req := &smpb.ListSecretsRequest{Parent: "projects/" + s.opts.Project, Filter: "name:" + s.pid + "_" + namespace + "_"}
	names := []string{}
	for token := ""; ; {
		secs, next, err := s.listPage(ctx, req, token)
		if err != nil {
			return nil, fmt.Errorf("listing custody records of namespace %s: %w", namespace, callError("listing the secrets of", req.Parent+" (filter "+req.Filter+")", err))
		}
		for _, sec := range secs {
			if name, ok := s.listedName(sec, namespace); ok {
				names = append(names, name)
			}
		}
		if next == "" {
			return names, nil
		}
		token = next
	}
}

// listPageSize is how many secrets List asks for at a time.
const listPageSize = 1000

// listPage fetches up to listPageSize secrets from token on (one call, or
// more if the service's pages are smaller) within Options.Timeout, retried
// as reads are. It returns the token of the rest, empty at the end.
func (s *Store) listPage(ctx context.Context, req *smpb.ListSecretsRequest, token string) ([]*smpb.Secret, string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	var secs []*smpb.Secret
	next, err := iterator.NewPager(s.client.ListSecrets(ctx, req, readRetry()), listPageSize, token).NextPage(&secs)
	return secs, next, err
}

// listedName is the Secret name of sec if it is a record of namespace.
func (s *Store) listedName(sec *smpb.Secret, namespace string) (string, bool) {
	full := sec.GetName()
	if !strings.HasPrefix(full, "projects/"+s.opts.Project+"/secrets/") {
		return "", false
	}
	id := full[strings.LastIndex(full, "/")+1:]
	ns, name, hashed, err := s.RecordName(id)
	if err != nil || ns != namespace {
		return "", false
	}
	if hashed {
		rns, rname, _ := strings.Cut(sec.GetAnnotations()[annRecord], "/")
		if rns != namespace || validName(rns, rname) != nil || secretID(s.pid, rns, rname) != id {
			return "", false
		}
		name = rname
	}
	return name, true
}
