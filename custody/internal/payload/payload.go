// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package payload is the byte layout of a custody record in a store whose
// value is one opaque blob (GCP Secret Manager, Azure Key Vault): the
// record's identity, when it was written, and its three PEM fields, framed
// by length so that no field is escaped and the size overhead is bounded
// (MaxOverhead) whatever the fields hold.
//
//	keyward-record/v1\n
//	<namespace>/<name>\n
//	<written-at, RFC 3339 with nanoseconds, UTC>\n
//	<len key> <len certificate> <len ca>\n
//	<key><certificate><ca>
//
// The identity lets a key reader check that the blob it fetched is the
// record it asked for (a store that hashes long names into its own name
// space relies on that), without any metadata permission.
package payload

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

const magic = "keyward-record/v1"

// MaxOverhead bounds what Encode adds to the three fields' lengths, for a
// namespace of at most 63 bytes and a name of at most 253 (Kubernetes' limits).
const MaxOverhead = 512

// Record is a decoded payload.
type Record struct {
	Namespace, Name string
	WrittenAt       time.Time
	Key, Cert, CA   []byte
}

// Encode lays r out. It never fails: the caller validates names and sizes.
func Encode(r Record) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n%s/%s\n%s\n%d %d %d\n", magic, r.Namespace, r.Name,
		r.WrittenAt.UTC().Format(time.RFC3339Nano), len(r.Key), len(r.Cert), len(r.CA))
	b.Write(r.Key)
	b.Write(r.Cert)
	b.Write(r.CA)
	return b.Bytes()
}

// Decode parses a payload. Its errors never quote the payload: it holds a key.
func Decode(p []byte) (Record, error) {
	var r Record
	lines := bytes.SplitN(p, []byte("\n"), 5)
	if len(lines) != 5 || string(lines[0]) != magic {
		return r, errors.New("custody payload is not a keyward record (bad header)")
	}
	id := string(lines[1])
	ns, name, ok := strings.Cut(id, "/")
	if !ok || ns == "" || name == "" {
		return r, errors.New("custody payload has no record name")
	}
	r.Namespace, r.Name = ns, name
	t, err := time.Parse(time.RFC3339Nano, string(lines[2]))
	if err != nil {
		return r, errors.New("custody payload has a bad write time")
	}
	r.WrittenAt = t
	fields := strings.Fields(string(lines[3]))
	if len(fields) != 3 {
		return r, errors.New("custody payload has bad field lengths")
	}
	var n [3]int
	total := 0
	for i, f := range fields {
		if n[i], err = strconv.Atoi(f); err != nil || n[i] < 0 {
			return r, errors.New("custody payload has bad field lengths")
		}
		total += n[i]
	}
	body := lines[4]
	if total != len(body) {
		return r, fmt.Errorf("custody payload body is %d bytes, header says %d", len(body), total)
	}
	r.Key = bytes.Clone(body[:n[0]])
	r.Cert = bytes.Clone(body[n[0] : n[0]+n[1]])
	r.CA = bytes.Clone(body[n[0]+n[1]:])
	return r, nil
}
