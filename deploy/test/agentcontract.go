// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package deploytest

// AgentFlag describes one command-line flag of `keyward agent`.
type AgentFlag struct {
	// Sink is the sink the flag configures ("files", "apisix", "kong"), or ""
	// for a flag of the agent itself. The example tests accept a sink's flag
	// only next to --sink=<that sink>.
	Sink string
	// Bool marks a flag that takes no value.
	Bool bool
	// Repeatable marks a flag that may be given more than once.
	Repeatable bool
}

// AgentFlags is the design contract of `keyward agent`'s command line: the
// examples in deploy/examples may pass these flags and no others. The agent's
// command line is checked against the same list (agentflags_test.go builds
// the binary and compares its --help);
// when a flag is added to or removed from the agent, change it here too.
// Each call returns a fresh map.
func AgentFlags() map[string]AgentFlag {
	return map[string]AgentFlag{
		"--secret":                    {Repeatable: true},
		"--namespace":                 {},
		"--kubeconfig":                {},
		"--vault-server":              {},
		"--vault-ca-file":             {},
		"--vault-namespace":           {},
		"--vault-auth-mount":          {},
		"--vault-role":                {},
		"--vault-token-file":          {},
		"--custody-mount":             {},
		"--custody-prefix":            {},
		"--cluster-name":              {},
		"--custody-store":             {},
		"--aws-region":                {},
		"--aws-endpoint":              {},
		"--gcp-project":               {},
		"--gcp-endpoint":              {},
		"--azure-vault-url":           {},
		"--sink":                      {Repeatable: true},
		"--health-addr":               {},
		"--metrics-addr":              {},
		"--resync-period":             {},
		"--log-format":                {},
		"--v":                         {},
		"--files-dir":                 {Sink: "files"},
		"--files-allow-non-tmpfs":     {Sink: "files", Bool: true},
		"--files-reload-pidfile":      {Sink: "files"},
		"--files-reload-signal":       {Sink: "files"},
		"--files-reload-url":          {Sink: "files"},
		"--apisix-admin-url":          {Sink: "apisix"},
		"--apisix-admin-key-file":     {Sink: "apisix"},
		"--apisix-mode":               {Sink: "apisix"},
		"--apisix-secret-manager-id":  {Sink: "apisix"},
		"--apisix-mirror-mount":       {Sink: "apisix"},
		"--apisix-vault-url":          {Sink: "apisix"},
		"--apisix-token-policy":       {Sink: "apisix"},
		"--apisix-token-ttl":          {Sink: "apisix"},
		"--apisix-ssl-id-prefix":      {Sink: "apisix"},
		"--apisix-timeout":            {Sink: "apisix"},
		"--apisix-token-role":         {Sink: "apisix"},
		"--apisix-token-revoke-delay": {Sink: "apisix"},
		"--kong-admin-url":            {Sink: "kong"},
		"--kong-admin-token-file":     {Sink: "kong"},
		"--kong-mode":                 {Sink: "kong"},
		"--kong-tags":                 {Sink: "kong"},
		"--kong-timeout":              {Sink: "kong"},
	}
}

// Defaults of `keyward agent` that the examples rely on when they do not
// pass the flag.
const (
	// AgentDefaultVaultTokenFile is --vault-token-file's default: a projected
	// ServiceAccount token with audience "vault".
	AgentDefaultVaultTokenFile = "/var/run/secrets/keyward/token"
	// AgentDefaultHealthPort is the port of --health-addr's default (:8081),
	// serving /healthz and /readyz.
	AgentDefaultHealthPort = 8081
	// AgentDefaultVaultRole is --vault-role's default, the Kubernetes auth
	// role deploy/vault/setup.sh creates for the agent.
	AgentDefaultVaultRole = "keyward-agent"
)
