// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package awssm

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyward-io/keyward/custody"
)

// listPageSize is the MaxResults of each ListSecrets call, the service's
// largest.
const listPageSize = 100

var _ custody.Lister = (*Store)(nil)

// List names the records of namespace: ListSecrets filtered by the name
// prefix "<prefix>/<namespace>/" (Secrets Manager's name filter is a
// case-sensitive prefix match), following NextToken until the last page
// (a filtered page may be empty and still have a next one), each page
// bounded by Options.Timeout. Every name is parsed back (ParsePath) and
// kept only if it is a record of exactly this namespace. Secrets scheduled
// for deletion are not listed (ListSecrets leaves them out by default).
// ListSecrets is eventually consistent (a record written in the last
// minutes may be missing, a deleted one still listed); the audit reads the
// metadata of a placeholder missing from the list before it acts. It needs
// secretsmanager:ListSecrets, which IAM cannot limit to a name prefix
// (deploy/aws).
func (s *Store) List(ctx context.Context, namespace string) ([]string, error) {
	if err := custody.ValidateListNamespace(namespace); err != nil {
		return nil, err
	}
	prefix := s.opts.Prefix + "/" + namespace + "/"
	pages := secretsmanager.NewListSecretsPaginator(s.client, &secretsmanager.ListSecretsInput{
		Filters:    []smtypes.Filter{{Key: smtypes.FilterNameStringTypeName, Values: []string{prefix}}},
		MaxResults: aws.Int32(listPageSize),
	}, func(o *secretsmanager.ListSecretsPaginatorOptions) { o.StopOnDuplicateToken = true })
	names := []string{}
	for pages.HasMorePages() {
		page, err := s.listPage(ctx, pages)
		if err != nil {
			return nil, fmt.Errorf("listing custody records of namespace %s (secrets named %s*): %w", namespace, prefix, callError("ListSecrets", err))
		}
		for _, e := range page.SecretList {
			ns, name, err := s.ParsePath(aws.ToString(e.Name))
			if err == nil && ns == namespace && e.DeletedDate == nil {
				names = append(names, name)
			}
		}
	}
	return names, nil
}

// listPage fetches the next page within Options.Timeout.
func (s *Store) listPage(ctx context.Context, pages *secretsmanager.ListSecretsPaginator) (*secretsmanager.ListSecretsOutput, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	return pages.NextPage(ctx)
}
