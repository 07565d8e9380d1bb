package network

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/vaultwall/vaultwall/authz/section"
)

// The configuration's network sections: properties.networkAcls (with
// properties.privateEndpointConnections) and network. Exported fields hold
// what the user wrote; Validate computes the parsed forms that New reads.

// NetworkAcls is ARM's NetworkRuleSet.
type NetworkAcls struct {
	// Bypass is AzureServices (default) or None.
	Bypass string `json:"bypass,omitempty"`
	// DefaultAction is Allow (ARM's default) or Deny.
	DefaultAction       string               `json:"defaultAction,omitempty"`
	IPRules             []IPRule             `json:"ipRules,omitempty"`
	VirtualNetworkRules []VirtualNetworkRule `json:"virtualNetworkRules,omitempty"`

	bypassAzure bool
	denyDefault bool
}

// BypassAzureServices reports bypass: AzureServices.
func (n *NetworkAcls) BypassAzureServices() bool { return n.bypassAzure }

// DefaultDeny reports defaultAction: Deny.
func (n *NetworkAcls) DefaultDeny() bool { return n.denyDefault }

// IPRule admits an address or prefix (IPv4 or IPv6; vaultwall extends Key
// Vault's IPv4-only rules).
type IPRule struct {
	Value string `json:"value"`

	prefix netip.Prefix
}

// Prefix is the parsed rule; a single address is a full-length prefix.
func (r *IPRule) Prefix() netip.Prefix { return r.prefix }

// VirtualNetworkRule admits a subnet by its ARM id.
type VirtualNetworkRule struct {
	ID                               string `json:"id"`
	IgnoreMissingVnetServiceEndpoint bool   `json:"ignoreMissingVnetServiceEndpoint,omitempty"`
}

// Network describes the network around the vault: which addresses each
// subnet holds, the approved private endpoints, and which proxies to believe.
type Network struct {
	Subnets          []Subnet          `json:"subnets,omitempty"`
	PrivateEndpoints []PrivateEndpoint `json:"privateEndpoints,omitempty"`
	TrustedProxies   TrustedProxies    `json:"trustedProxies"`
}

// Subnet gives a virtual-network subnet its address prefixes.
type Subnet struct {
	ID              string   `json:"id"`
	AddressPrefixes []string `json:"addressPrefixes"`

	prefixes []netip.Prefix
}

// Prefixes are the parsed addressPrefixes.
func (s *Subnet) Prefixes() []netip.Prefix { return s.prefixes }

// PrivateEndpoint is an approved private endpoint, recognised from the
// PROXY-protocol TLV its load balancer adds.
type PrivateEndpoint struct {
	ID string `json:"id"`
	// LinkID is the Azure Private Link LINKID (TLV 0xEE).
	LinkID *uint32 `json:"linkId,omitempty"`
	// VpceID is the AWS VPC endpoint id (TLV 0xEA).
	VpceID string `json:"vpceId,omitempty"`

	unapproved bool
}

// Approved reports whether the endpoint admits traffic: always, unless
// properties.privateEndpointConnections is given and holds no Approved
// connection of this endpoint.
func (p *PrivateEndpoint) Approved() bool { return !p.unapproved }

// TrustedProxies says when to believe X-Forwarded-For.
type TrustedProxies struct {
	// Hops is how many trusted proxies stand in front of the front proxy
	// (Envoy's xff_num_trusted_hops). The chain is X-Forwarded-For plus the
	// connection's peer (not repeated when Envoy already appended it); the
	// client is the entry hops places left of its rightmost. 0 ignores
	// X-Forwarded-For unless cidrs is set.
	Hops int `json:"hops"`
	// CIDRs are the addresses of proxies to believe: walking from the
	// right, addresses inside them are skipped.
	CIDRs []string `json:"cidrs,omitempty"`

	prefixes []netip.Prefix
}

// Prefixes are the parsed cidrs.
func (t *TrustedProxies) Prefixes() []netip.Prefix { return t.prefixes }

// PrivateEndpointConnection is one of a vault's private endpoint
// connections, reduced to what decides.
type PrivateEndpointConnection struct {
	// ID is the connection's ARM id.
	ID              string            `json:"id,omitempty"`
	PrivateEndpoint PrivateEndpointID `json:"privateEndpoint"`
	// PrivateLinkServiceConnectionState carries the approval.
	PrivateLinkServiceConnectionState ConnectionState `json:"privateLinkServiceConnectionState"`
}

// PrivateEndpointID names the endpoint of a connection.
type PrivateEndpointID struct {
	ID string `json:"id"`
}

// ConnectionState is a connection's approval: Approved, Pending, Rejected
// or Disconnected.
type ConnectionState struct {
	Status string `json:"status"`
}

// Approved reports status Approved.
func (c *PrivateEndpointConnection) Approved() bool {
	return strings.EqualFold(c.PrivateLinkServiceConnectionState.Status, "Approved")
}

// Limits caps the rule lists, as Key Vault does (the configuration's
// limits.maxIpRules and limits.maxVirtualNetworkRules).
type Limits struct {
	IPRules, VirtualNetworkRules int
}

// Note is told what the operator should know about a field without the
// configuration being refused.
type Note func(field, text string)

var subnetIDRE = regexp.MustCompile(`(?i)^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.network/virtualnetworks/[^/]+/subnets/[^/]+$`)

// SetDefaults fills in ARM's defaults: bypass AzureServices, defaultAction
// Allow.
func (n *NetworkAcls) SetDefaults() {
	if n.Bypass == "" {
		n.Bypass = "AzureServices"
	}
	if n.DefaultAction == "" {
		n.DefaultAction = "Allow"
	}
}

// Validate checks properties.networkAcls and parses its rules. A
// virtualNetworkRule must name one of subnets (network.subnets); with
// unresolved set, one that names none is noted there instead of refused,
// since an Azure document cannot say which addresses a subnet holds.
func (n *NetworkAcls) Validate(e *section.Errors, lim Limits, subnets []Subnet, unresolved Note) {
	const base = "properties.networkAcls"
	switch strings.ToLower(n.Bypass) {
	case "azureservices":
		n.bypassAzure = true
	case "none":
	default:
		e.Add(base+".bypass", section.ErrInvalidValue, "%q: want AzureServices or None", n.Bypass)
	}
	switch strings.ToLower(n.DefaultAction) {
	case "deny":
		n.denyDefault = true
	case "allow":
	default:
		e.Add(base+".defaultAction", section.ErrInvalidValue, "%q: want Allow or Deny", n.DefaultAction)
	}
	if k := len(n.IPRules); k > lim.IPRules {
		e.Add(base+".ipRules", section.ErrTooMany, "%d rules, the limit is %d (limits.maxIpRules)", k, lim.IPRules)
	}
	seen := map[netip.Prefix]int{}
	for i := range n.IPRules {
		r := &n.IPRules[i]
		f := fmt.Sprintf("%s.ipRules[%d].value", base, i)
		pfx, err := ParsePrefix(r.Value)
		if err != nil {
			e.Add(f, section.ErrInvalidPrefix, "%v", err)
			continue
		}
		r.prefix = pfx
		if j, dup := seen[pfx]; dup {
			e.Add(f, section.ErrDuplicate, "%q is the same rule as ipRules[%d]", r.Value, j)
			continue
		}
		seen[pfx] = i
	}
	if k := len(n.VirtualNetworkRules); k > lim.VirtualNetworkRules {
		e.Add(base+".virtualNetworkRules", section.ErrTooMany, "%d rules, the limit is %d (limits.maxVirtualNetworkRules)", k, lim.VirtualNetworkRules)
	}
	known := map[string]bool{}
	for _, s := range subnets {
		known[strings.ToLower(s.ID)] = true
	}
	seenID := map[string]int{}
	for i, r := range n.VirtualNetworkRules {
		f := fmt.Sprintf("%s.virtualNetworkRules[%d].id", base, i)
		if r.ID == "" {
			e.Add(f, section.ErrRequired, "")
			continue
		}
		if !subnetIDRE.MatchString(r.ID) {
			e.Add(f, section.ErrInvalidID, "%q: want /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>", r.ID)
			continue
		}
		key := strings.ToLower(r.ID)
		if j, dup := seenID[key]; dup {
			e.Add(f, section.ErrDuplicate, "same subnet as virtualNetworkRules[%d] (ids compare case-insensitively)", j)
			continue
		}
		seenID[key] = i
		if !known[key] {
			if unresolved != nil {
				unresolved(f, r.ID+" matches no address until network.subnets gives it its addressPrefixes (vaultwall config import writes a placeholder)")
				continue
			}
			e.Add(f, section.ErrUnresolved, "no entry of network.subnets has this id, so the rule could never match; add the subnet and its addressPrefixes")
		}
	}
}

// Validate checks the network section and parses its prefixes.
func (n *Network) Validate(e *section.Errors) {
	seen := map[string]int{}
	owner := map[netip.Prefix]string{}
	for i := range n.Subnets {
		s := &n.Subnets[i]
		base := fmt.Sprintf("network.subnets[%d]", i)
		if !subnetIDRE.MatchString(s.ID) {
			e.Add(base+".id", section.ErrInvalidID, "%q: want /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>", s.ID)
		}
		key := strings.ToLower(s.ID)
		if j, dup := seen[key]; dup {
			e.Add(base+".id", section.ErrDuplicate, "same subnet as network.subnets[%d]", j)
		}
		seen[key] = i
		if len(s.AddressPrefixes) == 0 {
			e.Add(base+".addressPrefixes", section.ErrRequired, "a subnet needs at least one prefix")
		}
		s.prefixes = s.prefixes[:0]
		for j, v := range s.AddressPrefixes {
			f := fmt.Sprintf("%s.addressPrefixes[%d]", base, j)
			p, err := ParsePrefix(v)
			if err != nil {
				e.Add(f, section.ErrInvalidPrefix, "%v", err)
				continue
			}
			for q, other := range owner {
				if q.Overlaps(p) {
					e.Add(f, section.ErrConflict, "%s overlaps %s of subnet %s: an address must belong to one subnet", p, q, other)
				}
			}
			owner[p] = s.ID
			s.prefixes = append(s.prefixes, p)
		}
	}
	seenPE := map[string]int{}
	seenLink := map[string]int{}
	for i, pe := range n.PrivateEndpoints {
		base := fmt.Sprintf("network.privateEndpoints[%d]", i)
		if pe.ID == "" {
			e.Add(base+".id", section.ErrRequired, "")
		}
		if j, dup := seenPE[strings.ToLower(pe.ID)]; dup && pe.ID != "" {
			e.Add(base+".id", section.ErrDuplicate, "same id as privateEndpoints[%d]", j)
		}
		seenPE[strings.ToLower(pe.ID)] = i
		switch {
		case pe.LinkID != nil && pe.VpceID != "":
			e.Add(base, section.ErrConflict, "set linkId (Azure) or vpceId (AWS), not both")
		case pe.LinkID == nil && pe.VpceID == "":
			e.Add(base, section.ErrRequired, "linkId (Azure Private Link) or vpceId (AWS PrivateLink) is required")
		case pe.VpceID != "" && !strings.HasPrefix(pe.VpceID, "vpce-"):
			e.Add(base+".vpceId", section.ErrInvalidValue, "%q: an AWS endpoint id starts with vpce-", pe.VpceID)
		}
		var key string
		if pe.LinkID != nil {
			key = "link:" + strconv.FormatUint(uint64(*pe.LinkID), 10)
		} else {
			key = "vpce:" + pe.VpceID
		}
		if j, dup := seenLink[key]; dup {
			e.Add(base, section.ErrDuplicate, "same endpoint identity as privateEndpoints[%d]", j)
		}
		seenLink[key] = i
	}
	tp := &n.TrustedProxies
	if tp.Hops < 0 || tp.Hops > 16 {
		e.Add("network.trustedProxies.hops", section.ErrInvalidValue, "%d: want 0 to 16", tp.Hops)
	}
	tp.prefixes = tp.prefixes[:0]
	for i, v := range tp.CIDRs {
		p, err := ParsePrefix(v)
		if err != nil {
			e.Add(fmt.Sprintf("network.trustedProxies.cidrs[%d]", i), section.ErrInvalidPrefix, "%v", err)
			continue
		}
		tp.prefixes = append(tp.prefixes, p)
	}
}

// ApplyConnections applies properties.privateEndpointConnections: when
// given, a privateEndpoints entry is approved only if an Approved
// connection names its id. What approves nothing is noted, not refused.
func (n *Network) ApplyConnections(e *section.Errors, conns []PrivateEndpointConnection, note Note) {
	if len(conns) == 0 {
		return
	}
	status := map[string]string{}
	for i, pc := range conns {
		base := fmt.Sprintf("properties.privateEndpointConnections[%d]", i)
		st := pc.PrivateLinkServiceConnectionState.Status
		switch strings.ToLower(st) {
		case "approved", "pending", "rejected", "disconnected":
		case "":
			e.Add(base+".privateLinkServiceConnectionState.status", section.ErrRequired, "")
		default:
			e.Add(base+".privateLinkServiceConnectionState.status", section.ErrInvalidValue, "%q: want Approved, Pending, Rejected or Disconnected", st)
		}
		id := strings.ToLower(pc.PrivateEndpoint.ID)
		if id == "" {
			// It names no endpoint, so it approves none.
			note(base+".privateEndpoint.id", "missing: the connection approves no endpoint")
			continue
		}
		if prev, dup := status[id]; dup && !strings.EqualFold(prev, "approved") {
			continue // any non-Approved state of an endpoint wins
		}
		status[id] = st
	}
	described := map[string]bool{}
	for i := range n.PrivateEndpoints {
		pe := &n.PrivateEndpoints[i]
		id := strings.ToLower(pe.ID)
		described[id] = true
		st, ok := status[id]
		switch {
		case !ok:
			pe.unapproved = true
			note(fmt.Sprintf("network.privateEndpoints[%d]", i), pe.ID+" has no connection in properties.privateEndpointConnections: not approved")
		case !strings.EqualFold(st, "approved"):
			pe.unapproved = true
			note(fmt.Sprintf("network.privateEndpoints[%d]", i), pe.ID+": connection "+st+": not approved")
		}
	}
	for i, pc := range conns {
		id := strings.ToLower(pc.PrivateEndpoint.ID)
		if pc.Approved() && id != "" && !described[id] {
			note(fmt.Sprintf("properties.privateEndpointConnections[%d]", i), pc.PrivateEndpoint.ID+" is Approved, but no network.privateEndpoints entry gives its linkId or vpceId, so no traffic matches it")
		}
	}
}

// ParsePrefix parses an IP address or CIDR prefix. IPv4-mapped IPv6 input is
// unmapped; a prefix with host bits set is refused, since it usually hides a
// typo.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Prefix{}, fmt.Errorf("empty")
	}
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q", s)
	}
	if p.Addr().Is4In6() {
		bits := p.Bits() - 96
		if bits < 0 {
			return netip.Prefix{}, fmt.Errorf("%q: an IPv4-mapped prefix needs at least /96", s)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), bits)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %s?", s, p.Masked())
	}
	return p, nil
}
