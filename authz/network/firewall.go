package network

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/section"
)

// Inner codes of the firewall's refusals.
const (
	CodeForbiddenByFirewall   = "ForbiddenByFirewall"
	CodeForbiddenByConnection = "ForbiddenByConnection"
)

// Rule names that do not depend on the configuration.
const (
	RulePublicAccessDisabled = "publicNetworkAccess=Disabled"
	RuleNoACLs               = "networkAcls=none"
	RuleDefaultAllow         = "defaultAction=Allow"
	RuleDefaultDeny          = "defaultAction=Deny"
	RuleUnapprovedEndpoint   = "privateEndpoints=unapproved"
)

// Firewall is a vault's network ACL compiled from one configuration. It is
// immutable and safe for concurrent use.
type Firewall struct {
	publicDisabled bool
	acls           bool // networkAcls present
	bypass         bool // bypass: AzureServices (the ARM default when networkAcls is absent)
	defaultDeny    bool

	proxies proxies

	ipRules   prefixes // → index into ipRuleFor
	ipRuleFor []string // "ipRules[i]=<value>"

	subnets    prefixes // → index into subnetIDs
	subnetIDs  []string
	subnetByID map[string]int32
	// subnetRule is, per subnet, the "virtualNetworkRules[j]=<id>" naming
	// it, "" when no rule does.
	subnetRule  []string
	vnetRules   []VirtualNetworkRule
	vnetRuleFor []string

	endpointByLink map[uint32]int32
	endpointByVpce map[string]int32
	endpointIDs    []string
	endpointByID   map[string]int32
	endpointRule   []string // "privateEndpoints[k]=<id>"

	trustedRule map[string]string // service name → "bypass=AzureServices(<name>)"
}

var _ authz.Firewall = (*Firewall)(nil)

// Config is what the firewall is compiled from: the network sections of a
// configuration, validated (Validate and ApplyConnections computed their
// parsed forms).
type Config struct {
	// PublicAccessDisabled is properties.publicNetworkAccess: Disabled.
	PublicAccessDisabled bool
	// NetworkAcls is properties.networkAcls; nil when absent.
	NetworkAcls *NetworkAcls
	Network     Network
	// TrustedServices are the service names bound in trustedServices, whose
	// bypass rule names are rendered once here.
	TrustedServices []string
}

// New compiles the firewall of validated sections. It fails only on what
// validation cannot see: values not parsed by Validate (config.Load or
// config.Parse run it), and trusted-proxy ranges that would believe anyone.
// Its errors name their fields; the configuration gives them a file and line
// (config.Config.Annotate).
func New(cfg Config) (*Firewall, error) {
	var errs []error
	f := &Firewall{
		publicDisabled: cfg.PublicAccessDisabled,
		bypass:         true,
	}
	var ipEntries []entry
	if acl := cfg.NetworkAcls; acl != nil {
		f.acls = true
		f.bypass = acl.BypassAzureServices()
		f.defaultDeny = acl.DefaultDeny()
		f.ipRuleFor = make([]string, len(acl.IPRules))
		for i := range acl.IPRules {
			r := &acl.IPRules[i]
			pfx := r.Prefix()
			if !pfx.IsValid() {
				errs = append(errs, section.Errorf(fmt.Sprintf("properties.networkAcls.ipRules[%d].value", i),
					section.ErrInvalidPrefix, "%q was not parsed: load the configuration with config.Load or config.Parse", r.Value))
				continue
			}
			ipEntries = append(ipEntries, entry{pfx, int32(i)})
			f.ipRuleFor[i] = fmt.Sprintf("ipRules[%d]=%s", i, strings.TrimSpace(r.Value))
		}
		f.vnetRules = slices.Clone(acl.VirtualNetworkRules) // the configuration may change; the firewall may not
		f.vnetRuleFor = make([]string, len(acl.VirtualNetworkRules))
		for j, r := range acl.VirtualNetworkRules {
			f.vnetRuleFor[j] = fmt.Sprintf("virtualNetworkRules[%d]=%s", j, r.ID)
		}
	}
	f.ipRules = compilePrefixes(ipEntries)

	n := &cfg.Network
	var subnetEntries []entry
	f.subnetByID = make(map[string]int32, len(n.Subnets))
	f.subnetRule = make([]string, len(n.Subnets))
	for i := range n.Subnets {
		s := &n.Subnets[i]
		f.subnetIDs = append(f.subnetIDs, s.ID)
		f.subnetByID[s.ID] = int32(i)
		if len(s.Prefixes()) != len(s.AddressPrefixes) {
			errs = append(errs, section.Errorf(fmt.Sprintf("network.subnets[%d].addressPrefixes", i),
				section.ErrInvalidPrefix, "not parsed: load the configuration with config.Load or config.Parse"))
			continue
		}
		for _, pfx := range s.Prefixes() {
			subnetEntries = append(subnetEntries, entry{pfx, int32(i)})
		}
		// ARM echoes ids lower-cased, so a rule and the inventory may differ
		// in case.
		for j, r := range f.vnetRules {
			if strings.EqualFold(r.ID, s.ID) {
				f.subnetRule[i] = f.vnetRuleFor[j]
				break
			}
		}
	}
	f.subnets = compilePrefixes(subnetEntries)

	f.endpointByLink = map[uint32]int32{}
	f.endpointByVpce = map[string]int32{}
	f.endpointByID = make(map[string]int32, len(n.PrivateEndpoints))
	for k := range n.PrivateEndpoints {
		pe := &n.PrivateEndpoints[k]
		if !pe.Approved() {
			continue // its connection is not Approved: its traffic is an unknown endpoint's
		}
		idx := int32(len(f.endpointIDs))
		switch {
		case pe.LinkID != nil:
			f.endpointByLink[*pe.LinkID] = idx
		case pe.VpceID != "":
			f.endpointByVpce[pe.VpceID] = idx
		default:
			errs = append(errs, section.Errorf(fmt.Sprintf("network.privateEndpoints[%d]", k),
				section.ErrRequired, "linkId (Azure Private Link) or vpceId (AWS PrivateLink) is required"))
		}
		f.endpointIDs = append(f.endpointIDs, pe.ID)
		f.endpointByID[pe.ID] = idx
		f.endpointRule = append(f.endpointRule, fmt.Sprintf("privateEndpoints[%d]=%s", k, pe.ID))
	}

	tp := &n.TrustedProxies
	f.proxies.hops = tp.Hops
	f.proxies.cidrs = slices.Clone(tp.Prefixes())
	if len(f.proxies.cidrs) != len(tp.CIDRs) {
		errs = append(errs, section.Errorf("network.trustedProxies.cidrs", section.ErrInvalidPrefix,
			"not parsed: load the configuration with config.Load or config.Parse"))
	}
	for i, pfx := range f.proxies.cidrs {
		if pfx.Bits() == 0 {
			errs = append(errs, section.Errorf(fmt.Sprintf("network.trustedProxies.cidrs[%d]", i), section.ErrInvalidValue,
				"%s trusts every address as a proxy, so any client could choose its address with X-Forwarded-For", pfx))
		}
	}

	f.trustedRule = map[string]string{}
	for _, name := range cfg.TrustedServices {
		f.trustedRule[name] = "bypass=AzureServices(" + name + ")"
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return f, nil
}

// Connect places a request: its client address, the inventory subnet that
// holds it, and the private endpoint it came through.
func (f *Firewall) Connect(req *authz.Request) authz.Connection {
	var c authz.Connection
	if f == nil || req == nil {
		c.Problem = "no request or no firewall"
		return c
	}
	c.ClientAddr, c.Problem = f.proxies.client(req.Peer.Addr(), req.Header("x-forwarded-for"))
	if pl := req.PrivateLink; pl.Present() {
		// The source address lives in the consumer's address space: it names
		// no subnet of ours.
		if k, ok := f.endpoint(pl); ok {
			c.PrivateEndpointID = f.endpointIDs[k]
		} else {
			c.PrivateLinkUnknown = true
		}
		return c
	}
	if c.ClientAddr.IsValid() {
		if i := f.subnets.lookup(c.ClientAddr); i >= 0 {
			c.SubnetID = f.subnetIDs[i]
		}
	}
	return c
}

// endpoint finds the approved endpoint of a private-link connection. Every
// identity the load balancer reported must name the same approved endpoint.
func (f *Firewall) endpoint(pl authz.PrivateLink) (int32, bool) {
	k := int32(-1)
	if pl.HasAzureLinkID {
		i, ok := f.endpointByLink[pl.AzureLinkID]
		if !ok {
			return -1, false
		}
		k = i
	}
	if pl.AWSEndpointID != "" {
		i, ok := f.endpointByVpce[pl.AWSEndpointID]
		if !ok || (k >= 0 && k != i) {
			return -1, false
		}
		k = i
	}
	return k, k >= 0
}

// Evaluate applies the rules to a placed request in Key Vault's order. It
// reads d.Network: the Connection from Connect and the trusted-service
// fields the pipeline filled.
func (f *Firewall) Evaluate(d *authz.Decision) authz.NetworkVerdict {
	if f == nil || d == nil {
		return authz.NetworkVerdict{Evaluated: true, Code: CodeForbiddenByFirewall, Rule: RuleDefaultDeny}
	}
	v := d.Network
	v.Evaluated = true
	v.Allowed = false
	v.Code = ""
	v.Rule = ""
	v.AuthType = placement(&v.Connection)

	// 1. Private link: admitted by approval alone, never by public rules.
	if v.PrivateEndpointID != "" || v.PrivateLinkUnknown {
		if k, ok := f.endpointByID[v.PrivateEndpointID]; ok && !v.PrivateLinkUnknown {
			return allow(v, authz.AddrPrivateLink, f.endpointRule[k])
		}
		return deny(v, CodeForbiddenByConnection, RuleUnapprovedEndpoint)
	}
	trusted := f.bypass && v.TrustedService != "" && v.TrustedInScope
	// 2. Public network access disabled.
	if f.publicDisabled {
		if trusted {
			return allow(v, authz.AddrTrustedService, f.trustedRuleFor(v.TrustedService))
		}
		return deny(v, CodeForbiddenByConnection, RulePublicAccessDisabled)
	}
	// 3. No ACLs, or default Allow.
	if !f.acls {
		return allow(v, v.AuthType, RuleNoACLs)
	}
	if !f.defaultDeny {
		return allow(v, v.AuthType, RuleDefaultAllow)
	}
	// 4. Trusted service, in scope, with bypass AzureServices.
	if trusted {
		return allow(v, authz.AddrTrustedService, f.trustedRuleFor(v.TrustedService))
	}
	// 5. IP rules, then virtual-network rules; both need a known address.
	if v.ClientAddr.IsValid() {
		if i := f.ipRules.lookup(v.ClientAddr); i >= 0 {
			return allow(v, authz.AddrPublicIP, f.ipRuleFor[i])
		}
		if rule := f.subnetRuleFor(v.SubnetID); rule != "" {
			return allow(v, authz.AddrSubnet, rule)
		}
	}
	// 6. Default Deny.
	return deny(v, CodeForbiddenByFirewall, RuleDefaultDeny)
}

// placement is where a request came from, before any rule admits it.
func placement(c *authz.Connection) authz.AddrAuthType {
	switch {
	case c.PrivateEndpointID != "" || c.PrivateLinkUnknown:
		return authz.AddrPrivateLink
	case c.SubnetID != "":
		return authz.AddrSubnet
	case c.ClientAddr.IsValid():
		return authz.AddrPublicIP
	}
	return authz.AddrUnknown
}

func allow(v authz.NetworkVerdict, how authz.AddrAuthType, rule string) authz.NetworkVerdict {
	v.Allowed, v.AuthType, v.Rule = true, how, rule
	return v
}

func deny(v authz.NetworkVerdict, code, rule string) authz.NetworkVerdict {
	v.Allowed, v.Code, v.Rule = false, code, rule
	return v
}

// trustedRuleFor names the bypass for a service; names bound in
// trustedServices are rendered at load, others (a recogniser configured
// elsewhere) cost one concatenation.
func (f *Firewall) trustedRuleFor(name string) string {
	if r, ok := f.trustedRule[name]; ok {
		return r
	}
	return "bypass=AzureServices(" + name + ")"
}

// subnetRuleFor names the virtual-network rule admitting a subnet, "" if
// none.
func (f *Firewall) subnetRuleFor(id string) string {
	if id == "" {
		return ""
	}
	if i, ok := f.subnetByID[id]; ok {
		return f.subnetRule[i]
	}
	for j, r := range f.vnetRules {
		if strings.EqualFold(r.ID, id) {
			return f.vnetRuleFor[j]
		}
	}
	return ""
}
