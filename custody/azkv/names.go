// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package azkv

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

const (
	maxSecretName = 127
	// maxPrefixName keeps the hashed form (prefix + "-s-h" + 64) within 127.
	maxPrefixName = maxSecretName - 4 - 64
)

func escape(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch c {
		case '-':
			b.WriteString("--")
		case '.':
			b.WriteString("-d")
		case '/':
			b.WriteString("-s")
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

func unescape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '-' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 == len(s) {
			return "", errors.New("dangling escape")
		}
		i++
		switch s[i] {
		case '-':
			b.WriteByte('-')
		case 'd':
			b.WriteByte('.')
		case 's':
			b.WriteByte('/')
		default:
			return "", fmt.Errorf("unknown escape -%c", s[i])
		}
	}
	return b.String(), nil
}

// prefixName validates "<prefix>[/<cluster>]" and returns it escaped.
func prefixName(prefix string) (string, error) {
	p := strings.Trim(prefix, "/")
	for _, s := range strings.Split(p, "/") {
		if len(validation.IsDNS1123Label(s)) != 0 {
			return "", fmt.Errorf("custody prefix %q: segment %q is not a DNS-1123 label", prefix, s)
		}
	}
	e := escape(p)
	if len(e) > maxPrefixName {
		return "", fmt.Errorf("custody prefix %q is too long for Key Vault names (%d characters escaped, at most %d)", prefix, len(e), maxPrefixName)
	}
	return e, nil
}

func validName(namespace, name string) error {
	if len(validation.IsDNS1123Label(namespace)) != 0 || len(validation.IsDNS1123Subdomain(name)) != 0 {
		return fmt.Errorf("invalid secret reference %q/%q: want a DNS-1123 label namespace and a DNS-1123 subdomain name", namespace, name)
	}
	return nil
}

// secretName maps a valid record reference under the escaped prefix pe.
func secretName(pe, namespace, name string) string {
	n := pe + "-s" + escape(namespace+"/"+name)
	if len(n) <= maxSecretName {
		return n
	}
	sum := sha256.Sum256([]byte(namespace + "/" + name))
	return pe + "-s-h" + hex.EncodeToString(sum[:])
}

// RecordName reverses the mapping for a secret name under this store's
// prefix. hashed reports a long reference stored by its hash: namespace
// and name are then empty and the versions' tags hold them.
func (s *Store) RecordName(secret string) (namespace, name string, hashed bool, err error) {
	rest, ok := strings.CutPrefix(strings.ToLower(secret), s.pe+"-s")
	if !ok {
		return "", "", false, fmt.Errorf("secret %q is not under custody prefix %q", secret, s.opts.Prefix)
	}
	if strings.HasPrefix(rest, "-h") {
		return "", "", true, nil
	}
	u, err := unescape(rest)
	if err != nil {
		return "", "", false, fmt.Errorf("secret %q is not a custody record name: %w", secret, err)
	}
	namespace, name, ok = strings.Cut(u, "/")
	if !ok || validName(namespace, name) != nil {
		return "", "", false, fmt.Errorf("secret %q is not a custody record name", secret)
	}
	return namespace, name, false, nil
}
