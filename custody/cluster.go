// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package custody

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// NamespaceLabelAdoptFromCluster on a custody Namespace names another
// cluster whose custody records Keyward may adopt for the Certificates
// created in it (package adopt): the record of <namespace>/<secret> written
// by that cluster is copied to this cluster's own record and the
// placeholder Secret is restored before cert-manager issues, so moving a
// workload between clusters never re-keys. Without the label a cluster only
// ever reads and writes its own records.
const NamespaceLabelAdoptFromCluster = "keyward.io/adopt-from-cluster"

// clusterNameRE is a DNS-1123 label: one Vault path segment, and a valid
// label value for NamespaceLabelAdoptFromCluster.
var clusterNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidateClusterName reports whether name can name a cluster in custody
// paths: a DNS-1123 label (lower-case letters, digits, '-', at most 63).
func ValidateClusterName(name string) error {
	if !clusterNameRE.MatchString(name) {
		return fmt.Errorf("cluster name %q is not a DNS-1123 label (a-z, 0-9 and '-', at most 63 characters)", name)
	}
	return nil
}

// ClusterPrefix is the folder of one cluster's records under a store's
// prefix: "<prefix>/<cluster>", or prefix itself when cluster is empty (a
// single cluster per Vault path, the layout before cluster names).
func ClusterPrefix(prefix, cluster string) string {
	prefix = strings.Trim(prefix, "/")
	if cluster == "" {
		return prefix
	}
	return path.Join(prefix, cluster)
}

// ValidateListNamespace checks the namespace a Lister is asked for: a
// Kubernetes namespace name (a DNS-1123 label), so it is one path segment
// or name part in every store.
func ValidateListNamespace(namespace string) error {
	if len(validation.IsDNS1123Label(namespace)) != 0 {
		return fmt.Errorf("listing custody records: invalid namespace %q (a namespace is a DNS-1123 label)", namespace)
	}
	return nil
}
