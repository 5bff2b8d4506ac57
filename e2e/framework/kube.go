// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package framework

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Namespaces and ServiceAccounts the stack creates, as a Helm install would.
const (
	KeywardNamespace          = "keyward-system"
	KeywardServiceAccount     = "keyward"
	CertManagerNamespace      = "cert-manager"
	CertManagerServiceAccount = "cert-manager"
	vaultNamespace            = "vault"
	vaultReviewerAccount      = "vault-token-reviewer"
)

// startKube starts etcd and kube-apiserver through envtest with cert-manager's
// and Keyward's CRDs installed; their output goes to files in dir. A
// non-empty certDir keeps the apiserver's certificates and keys there (see
// Options.RestartableAPIServer); empty leaves it to envtest. A non-empty
// encryptionConfig is the apiserver's --encryption-provider-config.
func startKube(dir string, webhooks envtest.WebhookInstallOptions, certDir, encryptionConfig string, extraCRDs []string) (*envtest.Environment, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		if _, err := binary(name); err != nil {
			return nil, err
		}
	}
	cmDir, err := ModuleDir("github.com/cert-manager/cert-manager")
	if err != nil {
		return nil, err
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	crdDirs := []string{filepath.Join(cmDir, "deploy", "crds")}
	if _, err := os.Stat(filepath.Join(root, "deploy", "crds")); err == nil {
		crdDirs = append(crdDirs, filepath.Join(root, "deploy", "crds"))
	}
	crdDirs = append(crdDirs, extraCRDs...)

	apiLog, err := os.Create(filepath.Join(dir, "kube-apiserver.log"))
	if err != nil {
		return nil, err
	}
	etcdLog, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: bin,
		CRDDirectoryPaths:     crdDirs,
		ErrorIfCRDPathMissing: true,
		WebhookInstallOptions: webhooks,
	}
	env.ControlPlane.APIServer = &envtest.APIServer{Out: apiLog, Err: apiLog, CertDir: certDir}
	if encryptionConfig != "" {
		env.ControlPlane.APIServer.Configure().Set("encryption-provider-config", encryptionConfig)
	}
	env.ControlPlane.Etcd = &envtest.Etcd{Out: etcdLog, Err: etcdLog}
	// Keep every revision long enough for raw-etcd scans to see history.
	env.ControlPlane.Etcd.Configure().Set("auto-compaction-retention", "0")
	if _, err := env.Start(); err != nil {
		return nil, fmt.Errorf("starting kube-apiserver and etcd (logs in %s): %w", dir, err)
	}
	return env, nil
}

// bootstrapAccounts creates the namespaces and ServiceAccounts of Keyward,
// cert-manager and Vault's token reviewer (bound to system:auth-delegator, as
// Vault's Kubernetes auth requires), and returns a reviewer token.
func bootstrapAccounts(ctx context.Context, kc kubernetes.Interface) (string, error) {
	for ns, sa := range map[string]string{
		KeywardNamespace:     KeywardServiceAccount,
		CertManagerNamespace: CertManagerServiceAccount,
		vaultNamespace:       vaultReviewerAccount,
	} {
		if err := ensureNamespace(ctx, kc, ns, nil); err != nil {
			return "", err
		}
		if _, err := kc.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
			ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: ns},
		}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("creating serviceaccount %s/%s: %w", ns, sa, err)
		}
	}
	if _, err := kc.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "vault-token-reviewer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: vaultReviewerAccount, Namespace: vaultNamespace}},
	}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("binding vault token reviewer: %w", err)
	}
	tr, err := kc.CoreV1().ServiceAccounts(vaultNamespace).CreateToken(ctx, vaultReviewerAccount, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](24 * 3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting vault reviewer token: %w", err)
	}
	return tr.Status.Token, nil
}

// ensureNamespace creates a namespace with labels, or adds the labels to an existing one.
func ensureNamespace(ctx context.Context, kc kubernetes.Interface, name string, labels map[string]string) error {
	_, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
	}, metav1.CreateOptions{})
	if err == nil {
		return nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	if len(labels) == 0 {
		return nil
	}
	ns, err := kc.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading namespace %s: %w", name, err)
	}
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	for k, v := range labels {
		ns.Labels[k] = v
	}
	if _, err := kc.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("labelling namespace %s: %w", name, err)
	}
	return nil
}
