// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package webhook

import (
	"strings"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/scrubber"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// GuardPath is where the custody guard handler (certificates/status) is served.
const GuardPath = "/mutate-cert-manager-io-v1-certificate-status"

// Webhook names inside the configuration. They must be fully qualified.
const (
	SecretScrubWebhookName = "secret-scrub.keyward.io"
	GuardWebhookName       = "custody-guard.keyward.io"
	AdoptWebhookName       = "custody-adopt.keyward.io"
)

// Defaults for ConfigOptions.
const (
	DefaultConfigurationName = "keyward"
	DefaultTimeoutSeconds    = int32(10)
)

// ConfigOptions describe how the apiserver reaches Keyward's webhooks.
type ConfigOptions struct {
	// Name of the MutatingWebhookConfiguration. Default DefaultConfigurationName.
	Name string
	// Service is the webhook server's Service; its Path is ignored (each
	// webhook sets its own). Exactly one of Service and URL must be set.
	Service *admissionregistrationv1.ServiceReference
	// URL is the webhook server's base URL (https://host:port), used instead
	// of Service (envtest, out-of-cluster).
	URL string
	// CABundle is the PEM CA that signs the webhook server's certificate.
	CABundle []byte
	// NamespaceSelector scopes both webhooks. Default: label
	// keyward.io/custody=enabled.
	NamespaceSelector *metav1.LabelSelector
	// SecretFailurePolicy applies when the scrub webhook is unreachable.
	// Default Fail: no Secret with a key is persisted unscrubbed; Ignore lets
	// it through to the watcher, which scrubs it later (measured exposure).
	SecretFailurePolicy *admissionregistrationv1.FailurePolicyType
	// GuardFailurePolicy applies when the guard is unreachable. Default Fail:
	// cert-manager's status updates wait, instead of a re-issue loop starting.
	GuardFailurePolicy *admissionregistrationv1.FailurePolicyType
	// SecretTimeoutSeconds and GuardTimeoutSeconds bound each call (1..30).
	// Default DefaultTimeoutSeconds.
	SecretTimeoutSeconds int32
	GuardTimeoutSeconds  int32
	// Adoption adds the adoption webhook (AdoptPath): Certificates created
	// in custody namespaces that also carry the label
	// custody.NamespaceLabelAdoptFromCluster. Its failure policy is Fail:
	// without Keyward the Certificate is refused rather than issued with a
	// new key.
	Adoption bool
}

// SecretScrubMatchConditions are the CEL conditions under which the apiserver
// calls the scrub webhook: a kubernetes.io/tls Secret (or an Envoy Gateway
// SDS reference Secret, custody.SecretTypeSDS) written for a cert-manager
// Certificate that holds key material; also an Opaque one, which the
// webhook refuses (scrubber.ErrOpaqueTarget: a Certificate's Secret created
// as Opaque before cert-manager wrote it). In CEL, object.data
// values are base64 strings, so "non-empty" means "not the empty string". Keys are
// tested with has()/in first: a missing key would be an evaluation error.
func SecretScrubMatchConditions() []admissionregistrationv1.MatchCondition {
	extras := make([]string, 0, 4)
	for _, k := range scrubber.KeyBearingDataKeys()[1:] {
		extras = append(extras, "'"+k+"'")
	}
	return []admissionregistrationv1.MatchCondition{
		{
			Name:       "tls-secret",
			Expression: "has(object.type) && object.type in ['kubernetes.io/tls', '" + string(custody.SecretTypeSDS) + "', 'Opaque']",
		},
		{
			Name: "cert-manager-certificate",
			Expression: "has(object.metadata.annotations) && '" + scrubber.AnnotationCertificateName + "' in object.metadata.annotations" +
				" && object.metadata.annotations['" + scrubber.AnnotationCertificateName + "'] != ''",
		},
		{
			Name: "holds-key-material",
			Expression: "has(object.data) && (('tls.key' in object.data && object.data['tls.key'] != '') || " +
				"[" + strings.Join(extras, ", ") + "].exists(k, k in object.data && object.data[k] != ''))",
		},
	}
}

// MutatingWebhookConfiguration returns Keyward's mutating webhooks: the
// Secret scrub (SecretScrubPath) and the custody guard on
// certificates/status (GuardPath), both scoped to custody namespaces, and
// with opts.Adoption the adoption webhook (AdoptPath).
func MutatingWebhookConfiguration(opts ConfigOptions) *admissionregistrationv1.MutatingWebhookConfiguration {
	opts = opts.withDefaults()
	cfg := baseWebhookConfiguration(opts)
	if opts.Adoption {
		cfg.Webhooks = append(cfg.Webhooks, adoptWebhook(opts))
	}
	return cfg
}

// adoptWebhook calls the adoption handler for Certificates created in
// custody namespaces labelled custody.NamespaceLabelAdoptFromCluster.
func adoptWebhook(opts ConfigOptions) admissionregistrationv1.MutatingWebhook {
	sel := opts.NamespaceSelector.DeepCopy()
	sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
		Key: custody.NamespaceLabelAdoptFromCluster, Operator: metav1.LabelSelectorOpExists,
	})
	fail := admissionregistrationv1.Fail
	equivalent := admissionregistrationv1.Equivalent
	return admissionregistrationv1.MutatingWebhook{
		Name:         AdoptWebhookName,
		ClientConfig: opts.clientConfig(AdoptPath),
		Rules: []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
			Rule: admissionregistrationv1.Rule{
				APIGroups: []string{"cert-manager.io"}, APIVersions: []string{"v1"}, Resources: []string{"certificates"},
				Scope: ptr.To(admissionregistrationv1.NamespacedScope),
			},
		}},
		FailurePolicy:     &fail,
		MatchPolicy:       &equivalent,
		NamespaceSelector: sel,
		ObjectSelector:    &metav1.LabelSelector{},
		// The handler writes to Vault and creates a Secret, but not for
		// dry-run requests.
		SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNoneOnDryRun),
		TimeoutSeconds:          ptr.To(DefaultTimeoutSeconds),
		AdmissionReviewVersions: []string{"v1"},
		ReinvocationPolicy:      ptr.To(admissionregistrationv1.NeverReinvocationPolicy),
	}
}

// baseWebhookConfiguration is the scrub and guard webhooks.
func baseWebhookConfiguration(opts ConfigOptions) *admissionregistrationv1.MutatingWebhookConfiguration {
	clientConfig := opts.clientConfig
	equivalent := admissionregistrationv1.Equivalent
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: opts.Name},
		Webhooks: []admissionregistrationv1.MutatingWebhook{
			{
				Name:         SecretScrubWebhookName,
				ClientConfig: clientConfig(SecretScrubPath),
				Rules: []admissionregistrationv1.RuleWithOperations{{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
					Rule: admissionregistrationv1.Rule{
						APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"secrets"},
						Scope: ptr.To(admissionregistrationv1.NamespacedScope),
					},
				}},
				FailurePolicy:     opts.SecretFailurePolicy,
				MatchPolicy:       &equivalent,
				NamespaceSelector: opts.NamespaceSelector.DeepCopy(),
				ObjectSelector:    &metav1.LabelSelector{},
				// The handler writes to Vault, but not for dry-run requests.
				SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNoneOnDryRun),
				TimeoutSeconds:          ptr.To(opts.SecretTimeoutSeconds),
				AdmissionReviewVersions: []string{"v1"},
				// Another mutating webhook could put a key back; the handler is
				// idempotent on placeholders, so re-invocation is cheap.
				ReinvocationPolicy: ptr.To(admissionregistrationv1.IfNeededReinvocationPolicy),
				MatchConditions:    SecretScrubMatchConditions(),
			},
			{
				Name:         GuardWebhookName,
				ClientConfig: clientConfig(GuardPath),
				Rules: []admissionregistrationv1.RuleWithOperations{{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Update},
					Rule: admissionregistrationv1.Rule{
						APIGroups: []string{"cert-manager.io"}, APIVersions: []string{"v1"}, Resources: []string{"certificates/status"},
						Scope: ptr.To(admissionregistrationv1.NamespacedScope),
					},
				}},
				FailurePolicy:           opts.GuardFailurePolicy,
				MatchPolicy:             &equivalent,
				NamespaceSelector:       opts.NamespaceSelector.DeepCopy(),
				ObjectSelector:          &metav1.LabelSelector{},
				SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
				TimeoutSeconds:          ptr.To(opts.GuardTimeoutSeconds),
				AdmissionReviewVersions: []string{"v1"},
				ReinvocationPolicy:      ptr.To(admissionregistrationv1.NeverReinvocationPolicy),
				MatchConditions:         GuardMatchConditions(),
			},
		},
	}
}

// withDefaults fills in every unset option (see ConfigOptions).
func (opts ConfigOptions) withDefaults() ConfigOptions {
	if opts.Name == "" {
		opts.Name = DefaultConfigurationName
	}
	if opts.NamespaceSelector == nil {
		opts.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{custody.NamespaceLabelCustody: "enabled"}}
	}
	fail := admissionregistrationv1.Fail
	if opts.SecretFailurePolicy == nil {
		opts.SecretFailurePolicy = &fail
	}
	if opts.GuardFailurePolicy == nil {
		opts.GuardFailurePolicy = &fail
	}
	if opts.SecretTimeoutSeconds == 0 {
		opts.SecretTimeoutSeconds = DefaultTimeoutSeconds
	}
	if opts.GuardTimeoutSeconds == 0 {
		opts.GuardTimeoutSeconds = DefaultTimeoutSeconds
	}
	return opts
}

// clientConfig is how the apiserver reaches the handler served at path.
func (opts ConfigOptions) clientConfig(path string) admissionregistrationv1.WebhookClientConfig {
	cc := admissionregistrationv1.WebhookClientConfig{CABundle: opts.CABundle}
	if opts.Service != nil {
		svc := *opts.Service
		svc.Path = ptr.To(path)
		cc.Service = &svc
	} else {
		cc.URL = ptr.To(strings.TrimSuffix(opts.URL, "/") + path)
	}
	return cc
}
