// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package gcpsm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// maxSecretID is Secret Manager's limit on a secret ID; maxPrefixID bounds
// the prefix part so that the hashed form always fits.
const (
	maxSecretID = 255
	maxPrefixID = 100
)

// prefixID maps "<prefix>[/<cluster>]" to its ID part: DNS-1123 labels
// joined by '_'.
func prefixID(prefix string) (string, error) {
	segs := strings.Split(strings.Trim(prefix, "/"), "/")
	for _, s := range segs {
		if len(validation.IsDNS1123Label(s)) != 0 {
			return "", fmt.Errorf("custody prefix %q: segment %q is not a DNS-1123 label", prefix, s)
		}
	}
	id := strings.Join(segs, "_")
	if len(id) > maxPrefixID {
		return "", fmt.Errorf("custody prefix %q is longer than %d characters", prefix, maxPrefixID)
	}
	return id, nil
}

// validName checks a record's namespace and name against Kubernetes' rules,
// which the name mapping relies on.
func validName(namespace, name string) error {
	if len(validation.IsDNS1123Label(namespace)) != 0 || len(validation.IsDNS1123Subdomain(name)) != 0 {
		return fmt.Errorf("invalid secret reference %q/%q: want a DNS-1123 label namespace and a DNS-1123 subdomain name", namespace, name)
	}
	return nil
}

// SecretID is the secret ID of record namespace/name under the prefix ID
// pid (see the package doc). The names must be valid (validName).
func secretID(pid, namespace, name string) string {
	id := pid + "_" + namespace + "_" + strings.ReplaceAll(name, ".", "__")
	if len(id) <= maxSecretID {
		return id
	}
	sum := sha256.Sum256([]byte(name))
	return pid + "_" + namespace + "__" + hex.EncodeToString(sum[:])
}

// RecordName reverses the mapping for a secret ID under this store's
// prefix. hashed reports a long name stored by its hash: name is then
// empty and the secret's keyward-record annotation holds it.
func (s *Store) RecordName(id string) (namespace, name string, hashed bool, err error) {
	rest, ok := strings.CutPrefix(id, s.pid+"_")
	if !ok {
		return "", "", false, fmt.Errorf("secret %q is not under custody prefix %q", id, s.opts.Prefix)
	}
	namespace, escaped, ok := strings.Cut(rest, "_")
	if !ok || len(validation.IsDNS1123Label(namespace)) != 0 {
		return "", "", false, fmt.Errorf("secret %q is not a custody record ID", id)
	}
	if strings.HasPrefix(escaped, "_") {
		return namespace, "", true, nil
	}
	name = strings.ReplaceAll(escaped, "__", ".")
	if validName(namespace, name) != nil {
		return "", "", false, fmt.Errorf("secret %q is not a custody record ID", id)
	}
	return namespace, name, false, nil
}
