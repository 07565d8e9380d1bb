package config

import (
	"net/netip"

	"github.com/vaultwall/vaultwall/authz/network"
	"github.com/vaultwall/vaultwall/authz/peer"
	"github.com/vaultwall/vaultwall/authz/section"
	"github.com/vaultwall/vaultwall/authz/token"
)

// The sections a stage compiles are declared by that stage, with their
// defaults and Validate; config composes them. These names let config's
// callers keep writing config.NetworkAcls, config.Issuer, ….
type (
	NetworkAcls               = network.NetworkAcls
	IPRule                    = network.IPRule
	VirtualNetworkRule        = network.VirtualNetworkRule
	Network                   = network.Network
	Subnet                    = network.Subnet
	PrivateEndpoint           = network.PrivateEndpoint
	TrustedProxies            = network.TrustedProxies
	PrivateEndpointConnection = network.PrivateEndpointConnection
	PrivateEndpointID         = network.PrivateEndpointID
	ConnectionState           = network.ConnectionState

	Identity   = token.Identity
	Issuer     = token.Issuer
	Challenge  = token.Challenge
	TokenCache = token.TokenCache
	Refresh    = token.Refresh

	TrustedServices = peer.TrustedServices
	TrustedService  = peer.TrustedService

	// Duration is a time.Duration written as "30s" or "5m" (or a number of
	// seconds).
	Duration = section.Duration
)

// Defaults of the identity section, applied when a field is omitted.
const (
	DefaultAudience  = token.DefaultAudience
	DefaultAuthority = token.DefaultAuthority
)

// IsGUID reports whether s is a GUID in 8-4-4-4-12 form.
func IsGUID(s string) bool { return section.IsGUID(s) }

// ParsePrefix parses an IP address or CIDR prefix as network rules are
// written (network.ParsePrefix).
func ParsePrefix(s string) (netip.Prefix, error) { return network.ParsePrefix(s) }

// FirewallConfig is what network.New compiles from this configuration.
func (c *Config) FirewallConfig() network.Config {
	names := make([]string, 0, len(c.TrustedServices.Services))
	for _, s := range c.TrustedServices.Services {
		names = append(names, s.Name)
	}
	return network.Config{
		PublicAccessDisabled: c.Properties.PublicAccessDisabled(),
		NetworkAcls:          c.Properties.NetworkAcls,
		Network:              c.Network,
		TrustedServices:      names,
	}
}
