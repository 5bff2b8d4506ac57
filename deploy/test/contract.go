// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package deploytest

// BinaryFlags are the command-line flags the chart passes to /keyward, with
// whether the chart always passes them. The keyward binary must accept
// exactly these; the chart tests fail if the Deployment passes anything else
// (extraArgs aside) or omits an always-passed flag. Each call returns a
// fresh map.
func BinaryFlags() map[string]bool {
	return map[string]bool{
		"--leader-elect":                   true,
		"--leader-election-id":             true,
		"--leader-election-lease-duration": true,
		"--leader-election-renew-deadline": true,
		"--leader-election-retry-period":   true,
		"--metrics-bind-address":           true,
		"--health-probe-bind-address":      true,
		"--pprof-bind-address":             false, // only with debug.pprofPort
		"--webhook-port":                   true,
		"--webhook-cert-dir":               true,
		"--cluster-resource-namespace":     true,
		"--watch-namespaces":               false, // only with watchNamespaces
		"--enable-issuer":                  true,
		"--issuer-health-period":           true,
		"--revocation-configmap":           true,
		"--enable-custody":                 true,
		"--vault-addr":                     false, // omitted when vault.addr is empty (issuer-only installs)
		"--vault-ca-file":                  false, // only with vault.caBundle or vault.caConfigMapName
		"--vault-namespace":                false, // only with vault.namespace
		"--vault-auth-mount":               true,
		"--vault-audience":                 true,
		"--vault-custody-role":             true,
		"--vault-guard-role":               true,
		"--service-account-namespace":      true,
		"--service-account-name":           true,
		"--custody-mount":                  true,
		"--custody-prefix":                 true,
		"--cluster-name":                   true,
		"--custody-store":                  true,
		"--aws-region":                     false, // only with custody.store aws
		"--aws-endpoint":                   false,
		"--aws-guard-role-arn":             false,
		"--gcp-project":                    false, // only with custody.store gcp
		"--gcp-endpoint":                   false,
		"--gcp-guard-service-account":      false,
		"--azure-vault-url":                false, // only with custody.store azure
		"--azure-guard-client-id":          false,
		"--vault-adopt-role":               false, // only with adoption.enabled
		"--custody-max-versions":           true,
		"--custody-write-timeout":          true,
		"--custody-audit-period":           true,
		"--custody-audit-read-records":     true,
		"--custody-watcher-workers":        true,
		"--custody-namespace-selector":     true,
		"--redact-certificates":            true,
		"--log-format":                     true,
		"--v":                              true,
	}
}

// KnownMetrics are the metric names the rules and the dashboard may use,
// with who exposes them. Histograms are listed by base name; their _bucket,
// _count and _sum series are implied. Each call returns a fresh map.
func KnownMetrics() map[string]string {
	return map[string]string{
		"keyward_scrub_duration_seconds":                       "scrubber (histogram, label path)",
		"keyward_key_exposure_seconds":                         "scrubber watcher (histogram)",
		"keyward_next_private_key_lifetime_seconds":            "scrubber watcher (histogram)",
		"keyward_next_private_keys":                            "scrubber watcher (gauge, leading replica only)",
		"keyward_scrub_total":                                  "scrubber (counter, labels path, result)",
		"keyward_custody_write_errors_total":                   "scrubber (counter)",
		"keyward_custody_audit_duration_seconds":               "scrubber watcher audit (histogram, leading replica only)",
		"keyward_custody_audit_store_calls_total":              "scrubber watcher audit (counter, label call: list, metadata)",
		"keyward_custody_audit_placeholders":                   "scrubber watcher audit (gauge, leading replica only)",
		"keyward_issuer_ready":                                 "issuer (gauge 0/1, label issuer = kind/namespace/name or kind/name)",
		"keyward_issuer_sign_total":                            "issuer (counter, labels issuer, result: success, permanent, issuer_error, retry)",
		"keyward_issuer_sign_duration_seconds":                 "issuer (histogram of Vault sign calls, label issuer)",
		"keyward_guard_custody_lookups_total":                  "custody guard (counter, label result: cache_hit, store, stale, error)",
		"keyward_guard_admission_duration_seconds":             "custody guard (histogram of admission answers)",
		"keyward_guard_decisions_total":                        "custody guard (counter, label decision: pass, pass_rewritten, veto, fail_open)",
		"keyward_agent_delivery_latency_seconds":               "delivery agent (histogram, label sink; Vault version written to sink serving it)",
		"keyward_agent_delivery_failures_total":                "delivery agent (counter, labels sink (vault: custody reads), namespace, secret)",
		"keyward_agent_delivered_version":                      "delivery agent (gauge, labels namespace, secret)",
		"keyward_agent_certificate_expiry_seconds":             "delivery agent (gauge, Unix time of the served notAfter, labels namespace, secret)",
		"keyward_kms_healthy":                                  "keyward kms (gauge 0/1: the last status check encrypted and decrypted a probe)",
		"keyward_kms_requests_total":                           "keyward kms (counter, labels op: encrypt, decrypt, status; result: ok, forbidden, rejected, unreached, invalid)",
		"keyward_tls_references":                               "TLS reference check (gauge, labels kind: Gateway, ListenerSet, Ingress, ApisixTls; state: servable, unservable, acknowledged; leading replica only)",
		"keyward_sds_unserved_requests_total":                  "keyward sds (counter, label reason)",
		"keyward_revocations_total":                            "revocation (counter, label result: revoked, expired, unknown, rejected, error, abandoned)",
		"keyward_revocations_pending":                          "revocation (gauge, leading replica only)",
		"keyward_revocations_overdue_seconds":                  "revocation (gauge: age past due of the oldest pending revocation; leading replica only)",
		"certmanager_certificate_expiration_timestamp_seconds": "cert-manager controller",
		"certmanager_certificate_renewal_timestamp_seconds":    "cert-manager controller",
	}
}

// PendingMetrics are KnownMetrics that Keyward's code does not define yet.
// The tests check that each is absent from the main module's sources, so the
// list cannot silently go stale: once a component defines one, the test
// fails until it is removed from here. Each call returns a fresh map.
func PendingMetrics() map[string]bool {
	return map[string]bool{}
}
