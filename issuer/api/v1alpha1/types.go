// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// VaultIssuerSpec says which Vault PKI role signs, and how to log in to Vault.
// It is shared by VaultIssuer and VaultClusterIssuer.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.caBundle) && has(self.caBundleSecretRef))",message="at most one of caBundle and caBundleSecretRef may be set"
type VaultIssuerSpec struct {
	// Server is Vault's base URL, e.g. https://vault.example.com:8200.
	// +required
	// +kubebuilder:validation:Pattern=`^https?://[^/?#\s]+/?$`
	Server string `json:"server"`

	// Path is the PKI sign endpoint, without the /v1/ prefix:
	// `<mount>/sign/<role>` or `<mount>/issuer/<issuer ref>/sign/<role>`.
	// +required
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*/(issuer/[A-Za-z0-9_.-]+/)?sign/[A-Za-z0-9_.-]+$`
	Path string `json:"path"`

	// Namespace is the Vault Enterprise namespace, sent as X-Vault-Namespace.
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// CABundle is a PEM bundle of CAs trusted to serve Vault's TLS. When
	// neither it nor CABundleSecretRef is set, the system roots are used.
	// +optional
	CABundle []byte `json:"caBundle,omitempty"`

	// CABundleSecretRef names a Secret key holding the PEM CA bundle. The
	// Secret lives in the issuer's namespace (VaultIssuer) or in the cluster
	// resource namespace (VaultClusterIssuer).
	// +optional
	CABundleSecretRef *SecretKeySelector `json:"caBundleSecretRef,omitempty"`

	// Auth says how Keyward logs in to Vault.
	// +required
	Auth VaultAuth `json:"auth"`

	// Policy restricts which CSRs are sent to Vault at all. Unset fields take
	// their defaults: RSA of at least 2048 bits, ECDSA on P-256 or P-384, any
	// duration and any DNS name (the Vault role still applies its own limits).
	// +optional
	Policy *KeyPolicy `json:"policy,omitempty"`

	// Revocation, when set, has Keyward revoke in Vault PKI the certificates
	// this issuer signed once they are no longer in use: superseded in their
	// Secret by a renewal or re-key, or left behind by a deleted Certificate.
	// Each is revoked after GracePeriod, by serial number only (the key is
	// never read). See docs/revocation.md.
	// +optional
	Revocation *Revocation `json:"revocation,omitempty"`
}

// Revocation configures the revocation of superseded certificates.
//
// +kubebuilder:validation:XValidation:rule="!has(self.gracePeriod) || (duration(self.gracePeriod) >= duration('1s') && duration(self.gracePeriod) <= duration('720h'))",message="gracePeriod must be between 1s and 720h"
type Revocation struct {
	// GracePeriod is how long a superseded certificate stays valid before it
	// is revoked, so that every gateway and agent has switched to its
	// successor. Default 1h; between 1s and 720h.
	// +optional
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	GracePeriod *metav1.Duration `json:"gracePeriod,omitempty"`

	// OnCertificateDeletion also revokes the certificate a Certificate's
	// Secret holds when the Certificate is deleted. Default true.
	// +optional
	// +kubebuilder:default=true
	OnCertificateDeletion *bool `json:"onCertificateDeletion,omitempty"`

	// Auth is the Vault login used for revocation, separate from the signing
	// login (spec.auth) so that the signing role never needs `update` on
	// `<mount>/revoke`. Its token must be allowed to write to `<mount>/revoke`
	// of the mount in spec.path (deploy/vault/keyward-revoker.hcl).
	// +required
	Auth VaultAuth `json:"auth"`
}

// DefaultRevocationGracePeriod is Revocation.GracePeriod's default.
const DefaultRevocationGracePeriod = time.Hour

// RevocationGracePeriod returns r.GracePeriod or its default.
func (r *Revocation) RevocationGracePeriod() time.Duration {
	if r == nil || r.GracePeriod == nil || r.GracePeriod.Duration <= 0 {
		return DefaultRevocationGracePeriod
	}
	return r.GracePeriod.Duration
}

// RevokeOnDeletion returns r.OnCertificateDeletion or its default (true).
func (r *Revocation) RevokeOnDeletion() bool {
	return r != nil && (r.OnCertificateDeletion == nil || *r.OnCertificateDeletion)
}

// VaultAuth holds exactly one way to log in to Vault.
//
// +kubebuilder:validation:XValidation:rule="(has(self.kubernetes) ? 1 : 0) + (has(self.appRole) ? 1 : 0) + (has(self.token) ? 1 : 0) == 1",message="exactly one of kubernetes, appRole or token must be set"
type VaultAuth struct {
	// Kubernetes logs in with a short-lived ServiceAccount token obtained
	// from the TokenRequest API. This is the recommended method.
	// +optional
	Kubernetes *KubernetesAuth `json:"kubernetes,omitempty"`

	// AppRole logs in with a role ID and a secret ID read from a Secret.
	// +optional
	AppRole *AppRoleAuth `json:"appRole,omitempty"`

	// Token uses a Vault token read from a Secret as is.
	// +optional
	Token *TokenAuth `json:"token,omitempty"`
}

// KubernetesAuth logs in through Vault's Kubernetes auth method.
type KubernetesAuth struct {
	// Role is the Vault Kubernetes auth role to log in as.
	// +required
	// +kubebuilder:validation:MinLength=1
	Role string `json:"role"`

	// MountPath is where the Kubernetes auth method is mounted, either as a
	// URL path ("/v1/auth/kubernetes") or a mount name ("kubernetes").
	// +optional
	// +kubebuilder:default="/v1/auth/kubernetes"
	MountPath string `json:"mountPath,omitempty"`

	// ServiceAccountRef is the ServiceAccount whose token is presented. It
	// lives in the issuer's namespace (VaultIssuer) or in the cluster resource
	// namespace (VaultClusterIssuer). Tokens are requested on demand and are
	// never stored in Secrets.
	// +required
	ServiceAccountRef ServiceAccountRef `json:"serviceAccountRef"`
}

// ServiceAccountRef names a ServiceAccount and the audiences its tokens carry.
type ServiceAccountRef struct {
	// Name of the ServiceAccount.
	// +required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Audiences of the requested token; they must include the audience the
	// Vault role is bound to. Default: ["vault"].
	// +optional
	// +listType=atomic
	Audiences []string `json:"audiences,omitempty"`
}

// AppRoleAuth logs in through Vault's AppRole auth method.
type AppRoleAuth struct {
	// Path is the AppRole mount, e.g. "approle".
	// +optional
	// +kubebuilder:default="approle"
	Path string `json:"path,omitempty"`

	// RoleID is the AppRole role ID (not secret).
	// +required
	// +kubebuilder:validation:MinLength=1
	RoleID string `json:"roleId"`

	// SecretRef names the Secret key holding the secret ID.
	// +required
	SecretRef SecretKeySelector `json:"secretRef"`
}

// TokenAuth uses a Vault token stored in a Secret.
type TokenAuth struct {
	// SecretRef names the Secret key holding the token.
	// +required
	SecretRef SecretKeySelector `json:"secretRef"`
}

// SecretKeySelector names one key of a Secret in the namespace the issuer
// kind reads Secrets from.
type SecretKeySelector struct {
	// Name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Key within the Secret's data.
	// +required
	// +kubebuilder:validation:MinLength=1
	Key string `json:"key"`
}

// KeyAlgorithm is a public key algorithm a CSR may use.
// +kubebuilder:validation:Enum=RSA;ECDSA;Ed25519
type KeyAlgorithm string

// Key algorithms a KeyPolicy can allow.
const (
	KeyAlgorithmRSA     KeyAlgorithm = "RSA"
	KeyAlgorithmECDSA   KeyAlgorithm = "ECDSA"
	KeyAlgorithmEd25519 KeyAlgorithm = "Ed25519"
)

// ECDSACurve is a named elliptic curve.
// +kubebuilder:validation:Enum=P-256;P-384;P-521
type ECDSACurve string

// KeyPolicy is checked on every CSR before Vault is called; a violation fails
// the CertificateRequest permanently with the name of the rule it broke.
type KeyPolicy struct {
	// AllowedKeyAlgorithms lists the public key algorithms accepted
	// (rule "key-algorithm"). Default: [RSA, ECDSA].
	// +optional
	// +listType=set
	AllowedKeyAlgorithms []KeyAlgorithm `json:"allowedKeyAlgorithms,omitempty"`

	// RSAMinBits is the smallest RSA modulus accepted (rule "rsa-min-bits").
	// Default: 2048.
	// +optional
	// +kubebuilder:validation:Minimum=1024
	RSAMinBits int32 `json:"rsaMinBits,omitempty"`

	// ECDSACurves lists the curves accepted (rule "ecdsa-curve").
	// Default: [P-256, P-384].
	// +optional
	// +listType=set
	ECDSACurves []ECDSACurve `json:"ecdsaCurves,omitempty"`

	// MaxDuration is the longest certificate lifetime a request may ask for
	// (rule "max-duration"). Requests without a duration are sent with this
	// TTL. Unset: no limit beyond the Vault role's max_ttl.
	// +optional
	MaxDuration *metav1.Duration `json:"maxDuration,omitempty"`

	// AllowedDNSNames are glob patterns every DNS name (and a common name
	// that is not an IP address) must match (rule "dns-names"). In a pattern
	// each dot-separated label is matched on its own, so "*.example.com"
	// matches "a.example.com" but neither "example.com" nor
	// "a.b.example.com". Unset: any name.
	// +optional
	// +listType=set
	AllowedDNSNames []string `json:"allowedDNSNames,omitempty"`
}

// VaultIssuerStatus is the observed state of an issuer.
type VaultIssuerStatus struct {
	// Conditions hold Ready: True once Vault is reachable, unsealed and the
	// configured login succeeds.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ConditionReady is the issuer's one condition type.
const ConditionReady = "Ready"

// VaultIssuer signs CertificateRequests in its own namespace with a Vault PKI
// role. Secrets and ServiceAccounts it references live in its namespace.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories=keyward
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type VaultIssuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the issuer's configuration.
	Spec VaultIssuerSpec `json:"spec"`
	// Status is maintained by Keyward.
	Status VaultIssuerStatus `json:"status,omitempty"`
}

// VaultIssuerList is a list of VaultIssuers.
//
// +kubebuilder:object:root=true
type VaultIssuerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the issuers.
	Items []VaultIssuer `json:"items"`
}

// VaultClusterIssuer signs CertificateRequests in any namespace with a Vault
// PKI role. Secrets and ServiceAccounts it references live in the cluster
// resource namespace Keyward is configured with.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=keyward
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type VaultClusterIssuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the issuer's configuration.
	Spec VaultIssuerSpec `json:"spec"`
	// Status is maintained by Keyward.
	Status VaultIssuerStatus `json:"status,omitempty"`
}

// VaultClusterIssuerList is a list of VaultClusterIssuers.
//
// +kubebuilder:object:root=true
type VaultClusterIssuerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the issuers.
	Items []VaultClusterIssuer `json:"items"`
}

// GenericIssuer is what VaultIssuer and VaultClusterIssuer have in common;
// the reconcilers handle both through it.
//
// +kubebuilder:object:generate=false
type GenericIssuer interface {
	client.Object
	// IssuerKind returns VaultIssuerKind or VaultClusterIssuerKind.
	IssuerKind() string
	// IssuerSpec returns the spec; callers must not modify it.
	IssuerSpec() *VaultIssuerSpec
	// IssuerStatus returns the status for reading and updating.
	IssuerStatus() *VaultIssuerStatus
}

// IssuerKind returns VaultIssuerKind.
func (*VaultIssuer) IssuerKind() string { return VaultIssuerKind }

// IssuerSpec returns the issuer's spec.
func (i *VaultIssuer) IssuerSpec() *VaultIssuerSpec { return &i.Spec }

// IssuerStatus returns the issuer's status.
func (i *VaultIssuer) IssuerStatus() *VaultIssuerStatus { return &i.Status }

// IssuerKind returns VaultClusterIssuerKind.
func (*VaultClusterIssuer) IssuerKind() string { return VaultClusterIssuerKind }

// IssuerSpec returns the issuer's spec.
func (i *VaultClusterIssuer) IssuerSpec() *VaultIssuerSpec { return &i.Spec }

// IssuerStatus returns the issuer's status.
func (i *VaultClusterIssuer) IssuerStatus() *VaultIssuerStatus { return &i.Status }
