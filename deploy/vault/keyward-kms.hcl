# Copyright 2026 The Keyward Authors.
# SPDX-License-Identifier: Apache-2.0
#
# keyward kms (the kube-apiserver's KMS v2 plugin, a static pod on each
# control-plane node): wraps and unwraps the apiserver's data-encryption-key
# seeds with ONE Transit key. Encrypt and decrypt only: it cannot read,
# export, rotate, configure or delete the key, and it cannot touch any other
# key or mount. The key name is fixed here (transit/keys/kubernetes-secrets);
# a cluster with its own key gets its own copy of this policy.
path "transit/encrypt/kubernetes-secrets" {
  capabilities = ["update"]
}

path "transit/decrypt/kubernetes-secrets" {
  capabilities = ["update"]
}
