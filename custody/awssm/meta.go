// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package awssm

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyward-io/keyward/custody"
)

// Tag keys of a record's public description (see the package doc).
const (
	tagNamespace   = "keyward:namespace"
	tagName        = "keyward:name"
	tagVersion     = "keyward:version"
	tagCertificate = "keyward:certificate"
	tagIssuerName  = "keyward:issuer-name"
	tagIssuerKind  = "keyward:issuer-kind"
	tagIssuerGroup = "keyward:issuer-group"
	tagSerial      = "keyward:serial"
	tagNotBefore   = "keyward:not-before"
	tagNotAfter    = "keyward:not-after"
	tagKeySHA256   = "keyward:key-sha256"
)

// state is what DescribeSecret says about a record's secret.
type state struct {
	exists  bool // the secret exists (it may have no version yet)
	current int  // the version holding AWSCURRENT; 0 if none
	tags    map[string]string
	// labelled maps each version Keyward wrote that still has its "v<N>"
	// label to N, by version id.
	labelled map[string]int
}

// describe reads the secret's state. A missing secret, or one scheduled for
// deletion, is a state that does not exist; a current version Keyward did
// not write is an error.
func describe(ctx context.Context, c *secretsmanager.Client, name string) (state, error) {
	out, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if isCode(err, codeNotFound) {
		return state{}, nil
	}
	if err != nil {
		return state{}, callError("DescribeSecret", err)
	}
	if out.DeletedDate != nil {
		return state{}, nil
	}
	st := state{exists: true, tags: map[string]string{}, labelled: map[string]int{}}
	for _, t := range out.Tags {
		st.tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	for id, stages := range out.VersionIdsToStages {
		n, ours := parseVersionID(id)
		if slices.Contains(stages, "AWSCURRENT") {
			if !ours {
				return st, fmt.Errorf("the current version %s of secret %s was not written by keyward", id, name)
			}
			st.current = n
		}
		if ours && slices.Contains(stages, VersionLabel(n)) {
			st.labelled[id] = n
		}
	}
	return st, nil
}

// Metadata reads the record's metadata from the secret's tags (DescribeSecret,
// never GetSecretValue). When the tags describe another version than the
// current one (a write between its two calls, or interrupted there), only
// Version and Torn are set.
func (s *Store) Metadata(ctx context.Context, namespace, name string) (custody.Metadata, error) {
	if err := validName(namespace, name); err != nil {
		return custody.Metadata{}, fmt.Errorf("reading custody metadata: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	sn := s.Path(namespace, name)
	st, err := describe(ctx, s.client, sn)
	if err != nil {
		return custody.Metadata{}, fmt.Errorf("reading custody metadata for secret %s/%s (%s): %w", namespace, name, sn, err)
	}
	if st.current == 0 {
		return custody.Metadata{}, fmt.Errorf("reading custody metadata for secret %s/%s: %s has no current version: %w", namespace, name, sn, custody.ErrNotFound)
	}
	if st.tags[tagNamespace] != namespace || st.tags[tagName] != name {
		return custody.Metadata{}, fmt.Errorf("reading custody metadata for secret %s/%s: %s is tagged as the record of %q/%q", namespace, name, sn, st.tags[tagNamespace], st.tags[tagName])
	}
	if st.tags[tagVersion] != strconv.Itoa(st.current) {
		return custody.Metadata{Version: st.current, Torn: true}, nil
	}
	return fromTags(st.tags, st.current), nil
}

func fromTags(tags map[string]string, version int) custody.Metadata {
	m := custody.Metadata{
		CertificateName: tags[tagCertificate],
		IssuerName:      tags[tagIssuerName],
		IssuerKind:      tags[tagIssuerKind],
		IssuerGroup:     tags[tagIssuerGroup],
		Serial:          tags[tagSerial],
		KeySHA256:       tags[tagKeySHA256],
		Version:         version,
	}
	if t, err := time.Parse(time.RFC3339, tags[tagNotBefore]); err == nil {
		m.NotBefore = t
	}
	if t, err := time.Parse(time.RFC3339, tags[tagNotAfter]); err == nil {
		m.NotAfter = t
	}
	return m
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// identityTags name the record a secret holds.
func identityTags(namespace, name string) []smtypes.Tag {
	return []smtypes.Tag{
		{Key: aws.String(tagNamespace), Value: aws.String(namespace)},
		{Key: aws.String(tagName), Value: aws.String(name)},
	}
}

// toTags describes version of rec; every key is written (empty values
// included) so that a field emptied by a later version is emptied.
func toTags(rec custody.Record, version int) ([]smtypes.Tag, error) {
	m := rec.Meta
	tags := identityTags(rec.Namespace, rec.Name)
	for _, kv := range [][2]string{
		{tagVersion, strconv.Itoa(version)},
		{tagCertificate, m.CertificateName},
		{tagIssuerName, m.IssuerName},
		{tagIssuerKind, m.IssuerKind},
		{tagIssuerGroup, m.IssuerGroup},
		{tagSerial, m.Serial},
		{tagNotBefore, formatTime(m.NotBefore)},
		{tagNotAfter, formatTime(m.NotAfter)},
		{tagKeySHA256, m.KeySHA256},
	} {
		if len(kv[1]) > maxTagValue {
			return nil, fmt.Errorf("metadata %s is %d characters, a Secrets Manager tag value holds at most %d", kv[0], len(kv[1]), maxTagValue)
		}
		tags = append(tags, smtypes.Tag{Key: aws.String(kv[0]), Value: aws.String(kv[1])})
	}
	return tags, nil
}
