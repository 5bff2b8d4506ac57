// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package custody

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"math/big"
	"strings"
)

// Fingerprint is the key fingerprint Keyward records (AnnotationKeySHA256,
// Metadata.KeySHA256): the lower-case hex SHA-256 of a public key's DER
// SubjectPublicKeyInfo. It is computable from public data alone, a
// certificate's (cert.RawSubjectPublicKeyInfo) or a CSR's, and reveals
// nothing about the private key.
func Fingerprint(spkiDER []byte) string {
	sum := sha256.Sum256(spkiDER)
	return hex.EncodeToString(sum[:])
}

// SerialHex is a certificate's serial number in lower-case hex, as recorded
// in AnnotationSerial and Metadata.Serial.
func SerialHex(cert *x509.Certificate) string {
	return cert.SerialNumber.Text(16)
}

// SerialEqual compares two hex serial numbers, ignoring case, colons, a 0x
// prefix and leading zeros. Unparsable or empty serials never match.
func SerialEqual(a, b string) bool {
	x, okA := parseSerial(a)
	y, okB := parseSerial(b)
	return okA && okB && x.Cmp(y) == 0
}

func parseSerial(s string) (*big.Int, bool) {
	s = strings.ReplaceAll(strings.TrimSpace(s), ":", "")
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if s == "" || len(s) > 256 {
		return nil, false
	}
	return new(big.Int).SetString(s, 16)
}
