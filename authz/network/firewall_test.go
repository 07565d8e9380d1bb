package network_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/network"
	"github.com/vaultwall/vaultwall/authz/section"
	"github.com/vaultwall/vaultwall/config"
)

const (
	backendID    = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/app/subnets/backend"
	backendLower = "/subscriptions/s1/resourcegroups/rg/providers/microsoft.network/virtualnetworks/app/subnets/backend"
	otherID      = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/app/subnets/other"
	pe1          = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/privateEndpoints/pe1"
	pe2          = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/privateEndpoints/pe2"
	vpce         = "vpce-0123456789abcdef0"
	linkID       = 305419896
)

// acls is the rule set most cases run against; publicNetworkAccess, bypass
// and defaultAction are filled per case.
const acls = `
trustedServices:
  services:
    - name: Backup
      principals: ["spiffe://trusted.example/azure-backup"]
properties:
  publicNetworkAccess: %s
  networkAcls:
    defaultAction: %s
    bypass: %s
    ipRules:
      - value: 203.0.113.0/24        # 0
      - value: 203.0.113.7           # 1: a single address inside rule 0
      - value: 2001:db8:1::/48       # 2
      - value: 2001:db8:1::42/128    # 3
      - value: 198.51.100.0/22       # 4
      - value: 198.51.100.0/24       # 5: inside rule 4
      - value: 192.0.2.1/32          # 6
    virtualNetworkRules:
      - id: ` + backendLower + `   # ARM echoes ids lower-cased
network:
  subnets:
    - id: ` + backendID + `
      addressPrefixes: [10.1.2.0/24, "fd00:1:2::/64"]
    - id: ` + otherID + `
      addressPrefixes: [10.9.0.0/16]
  privateEndpoints:
    - id: ` + pe1 + `
      linkId: 305419896
    - id: ` + pe2 + `
      vpceId: ` + vpce + `
`

func aclConfig(public, def, bypass string) string {
	s := acls
	for _, v := range []string{public, def, bypass} {
		s = strings.Replace(s, "%s", v, 1)
	}
	return s
}

type want struct {
	allowed  bool
	code     string
	how      authz.AddrAuthType
	rule     string
	client   string // "" means invalid
	subnet   string
	endpoint string
	unknown  bool
}

func TestEvaluateOrder(t *testing.T) {
	denyAzure := firewall(t, aclConfig("Enabled", "Deny", "AzureServices"))
	denyNone := firewall(t, aclConfig("Enabled", "Deny", "None"))
	disabledAzure := firewall(t, aclConfig("Disabled", "Deny", "AzureServices"))
	disabledNone := firewall(t, aclConfig("Disabled", "Allow", "None"))
	allowAzure := firewall(t, aclConfig("Enabled", "Allow", "AzureServices"))
	noACLs := firewall(t, `
network:
  privateEndpoints:
    - {id: `+pe1+`, linkId: 305419896}
`)
	disabledNoACLs := firewall(t, "properties: {publicNetworkAccess: Disabled}\n")

	azure := func(id uint32) authz.PrivateLink { return authz.PrivateLink{AzureLinkID: id, HasAzureLinkID: true} }
	aws := func(id string) authz.PrivateLink { return authz.PrivateLink{AWSEndpointID: id} }

	for _, tc := range []struct {
		name    string
		fw      *network.Firewall
		peer    string
		link    authz.PrivateLink
		trusted string
		inScope bool
		want    want
	}{
		// 1. Private link.
		{name: "azure private link approved", fw: denyAzure, peer: "172.16.0.9", link: azure(linkID),
			want: want{allowed: true, how: authz.AddrPrivateLink, rule: "privateEndpoints[0]=" + pe1, client: "172.16.0.9", endpoint: pe1}},
		{name: "aws private link approved", fw: denyAzure, peer: "172.16.0.9", link: aws(vpce),
			want: want{allowed: true, how: authz.AddrPrivateLink, rule: "privateEndpoints[1]=" + pe2, client: "172.16.0.9", endpoint: pe2}},
		{name: "private link approved with public access disabled", fw: disabledAzure, peer: "172.16.0.9", link: azure(linkID),
			want: want{allowed: true, how: authz.AddrPrivateLink, rule: "privateEndpoints[0]=" + pe1, client: "172.16.0.9", endpoint: pe1}},
		{name: "private link approved without an address", fw: denyAzure, link: aws(vpce),
			want: want{allowed: true, how: authz.AddrPrivateLink, rule: "privateEndpoints[1]=" + pe2, endpoint: pe2}},
		{name: "unknown link id is refused even from an address an ipRule admits", fw: denyAzure, peer: "203.0.113.7", link: azure(42),
			want: want{code: network.CodeForbiddenByConnection, how: authz.AddrPrivateLink, rule: network.RuleUnapprovedEndpoint, client: "203.0.113.7", unknown: true}},
		{name: "unknown vpce is refused", fw: denyAzure, peer: "10.1.2.3", link: aws("vpce-ffffffffffffffff0"),
			want: want{code: network.CodeForbiddenByConnection, how: authz.AddrPrivateLink, rule: network.RuleUnapprovedEndpoint, client: "10.1.2.3", unknown: true}},
		{name: "unknown private link is refused before defaultAction Allow", fw: allowAzure, peer: "203.0.113.7", link: azure(7),
			want: want{code: network.CodeForbiddenByConnection, how: authz.AddrPrivateLink, rule: network.RuleUnapprovedEndpoint, client: "203.0.113.7", unknown: true}},
		{name: "unknown private link is refused to a trusted service", fw: denyAzure, peer: "172.16.0.9", link: azure(7), trusted: "Backup", inScope: true,
			want: want{code: network.CodeForbiddenByConnection, how: authz.AddrPrivateLink, rule: network.RuleUnapprovedEndpoint, client: "172.16.0.9", unknown: true}},
		{name: "azure and aws identities naming different endpoints", fw: denyAzure, peer: "172.16.0.9",
			link: authz.PrivateLink{AzureLinkID: linkID, HasAzureLinkID: true, AWSEndpointID: vpce},
			want: want{code: network.CodeForbiddenByConnection, how: authz.AddrPrivateLink, rule: network.RuleUnapprovedEndpoint, client: "172.16.0.9", unknown: true}},
		{name: "link id 0 is an identity too", fw: denyAzure, peer: "172.16.0.9", link: azure(0),
			want: want{code: network.CodeForbiddenByConnection, how: authz.AddrPrivateLink, rule: network.RuleUnapprovedEndpoint, client: "172.16.0.9", unknown: true}},

		// 2. publicNetworkAccess Disabled.
		{name: "disabled refuses an address an ipRule admits", fw: disabledAzure, peer: "203.0.113.7",
			want: want{code: network.CodeForbiddenByConnection, how: authz.AddrPublicIP, rule: network.RulePublicAccessDisabled, client: "203.0.113.7"}},
		{name: "disabled refuses a subnet a rule admits", fw: disabledAzure, peer: "10.1.2.3",
			want: want{code: network.CodeForbiddenByConnection, how: authz.AddrSubnet, rule: network.RulePublicAccessDisabled, client: "10.1.2.3", subnet: backendID}},
		{name: "disabled admits a trusted service in scope", fw: disabledAzure, peer: "198.18.0.1", trusted: "Backup", inScope: true,
			want: want{allowed: true, how: authz.AddrTrustedService, rule: "bypass=AzureServices(Backup)", client: "198.18.0.1"}},
		{name: "disabled refuses a trusted service out of scope", fw: disabledAzure, peer: "198.18.0.1", trusted: "Backup",
			want: want{code: network.CodeForbiddenByConnection, how: authz.AddrPublicIP, rule: network.RulePublicAccessDisabled, client: "198.18.0.1"}},
		{name: "disabled with bypass None refuses a trusted service", fw: disabledNone, peer: "198.18.0.1", trusted: "Backup", inScope: true,
			want: want{code: network.CodeForbiddenByConnection, how: authz.AddrPublicIP, rule: network.RulePublicAccessDisabled, client: "198.18.0.1"}},
		{name: "disabled overrides defaultAction Allow", fw: disabledNone, peer: "198.18.0.1",
			want: want{code: network.CodeForbiddenByConnection, how: authz.AddrPublicIP, rule: network.RulePublicAccessDisabled, client: "198.18.0.1"}},
		{name: "disabled without networkAcls: ARM's default bypass admits a trusted service", fw: disabledNoACLs, peer: "198.18.0.1", trusted: "Backup", inScope: true,
			want: want{allowed: true, how: authz.AddrTrustedService, rule: "bypass=AzureServices(Backup)", client: "198.18.0.1"}},
		{name: "disabled without networkAcls refuses others", fw: disabledNoACLs, peer: "198.18.0.1",
			want: want{code: network.CodeForbiddenByConnection, how: authz.AddrPublicIP, rule: network.RulePublicAccessDisabled, client: "198.18.0.1"}},

		// 3. No networkAcls, or defaultAction Allow.
		{name: "no networkAcls", fw: noACLs, peer: "198.18.0.1",
			want: want{allowed: true, how: authz.AddrPublicIP, rule: network.RuleNoACLs, client: "198.18.0.1"}},
		{name: "no networkAcls and no address", fw: noACLs,
			want: want{allowed: true, how: authz.AddrUnknown, rule: network.RuleNoACLs}},
		{name: "defaultAction Allow", fw: allowAzure, peer: "198.18.0.1",
			want: want{allowed: true, how: authz.AddrPublicIP, rule: network.RuleDefaultAllow, client: "198.18.0.1"}},
		{name: "defaultAction Allow from a subnet", fw: allowAzure, peer: "10.9.0.1",
			want: want{allowed: true, how: authz.AddrSubnet, rule: network.RuleDefaultAllow, client: "10.9.0.1", subnet: otherID}},
		{name: "defaultAction Allow needs no address", fw: allowAzure,
			want: want{allowed: true, how: authz.AddrUnknown, rule: network.RuleDefaultAllow}},

		// 4. Trusted services.
		{name: "trusted service in scope", fw: denyAzure, peer: "198.18.0.1", trusted: "Backup", inScope: true,
			want: want{allowed: true, how: authz.AddrTrustedService, rule: "bypass=AzureServices(Backup)", client: "198.18.0.1"}},
		{name: "trusted service beats an ipRule", fw: denyAzure, peer: "203.0.113.7", trusted: "Backup", inScope: true,
			want: want{allowed: true, how: authz.AddrTrustedService, rule: "bypass=AzureServices(Backup)", client: "203.0.113.7"}},
		{name: "trusted service needs no address", fw: denyAzure, trusted: "Backup", inScope: true,
			want: want{allowed: true, how: authz.AddrTrustedService, rule: "bypass=AzureServices(Backup)"}},
		{name: "trusted service not in the configuration is still named", fw: denyAzure, peer: "198.18.0.1", trusted: "Batch", inScope: true,
			want: want{allowed: true, how: authz.AddrTrustedService, rule: "bypass=AzureServices(Batch)", client: "198.18.0.1"}},
		{name: "trusted service out of scope is an ordinary caller", fw: denyAzure, peer: "198.18.0.1", trusted: "Backup",
			want: want{code: network.CodeForbiddenByFirewall, how: authz.AddrPublicIP, rule: network.RuleDefaultDeny, client: "198.18.0.1"}},
		{name: "trusted service out of scope from an admitted address", fw: denyAzure, peer: "203.0.113.9", trusted: "Backup",
			want: want{allowed: true, how: authz.AddrPublicIP, rule: "ipRules[0]=203.0.113.0/24", client: "203.0.113.9"}},
		{name: "bypass None ignores a trusted service", fw: denyNone, peer: "198.18.0.1", trusted: "Backup", inScope: true,
			want: want{code: network.CodeForbiddenByFirewall, how: authz.AddrPublicIP, rule: network.RuleDefaultDeny, client: "198.18.0.1"}},

		// 5. IP rules and virtual-network rules.
		{name: "ipv4 cidr", fw: denyAzure, peer: "203.0.113.9",
			want: want{allowed: true, how: authz.AddrPublicIP, rule: "ipRules[0]=203.0.113.0/24", client: "203.0.113.9"}},
		{name: "ipv4 /32 inside a cidr is more specific", fw: denyAzure, peer: "203.0.113.7",
			want: want{allowed: true, how: authz.AddrPublicIP, rule: "ipRules[1]=203.0.113.7", client: "203.0.113.7"}},
		{name: "ipv4-mapped ipv6 peer", fw: denyAzure, peer: "::ffff:203.0.113.7",
			want: want{allowed: true, how: authz.AddrPublicIP, rule: "ipRules[1]=203.0.113.7", client: "203.0.113.7"}},
		{name: "explicit /32", fw: denyAzure, peer: "192.0.2.1",
			want: want{allowed: true, how: authz.AddrPublicIP, rule: "ipRules[6]=192.0.2.1/32", client: "192.0.2.1"}},
		{name: "next to a /32", fw: denyAzure, peer: "192.0.2.2",
			want: want{code: network.CodeForbiddenByFirewall, how: authz.AddrPublicIP, rule: network.RuleDefaultDeny, client: "192.0.2.2"}},
		{name: "ipv6 /48", fw: denyAzure, peer: "2001:db8:1:ffff::1",
			want: want{allowed: true, how: authz.AddrPublicIP, rule: "ipRules[2]=2001:db8:1::/48", client: "2001:db8:1:ffff::1"}},
		{name: "ipv6 /128", fw: denyAzure, peer: "2001:db8:1::42",
			want: want{allowed: true, how: authz.AddrPublicIP, rule: "ipRules[3]=2001:db8:1::42/128", client: "2001:db8:1::42"}},
		{name: "ipv6 outside", fw: denyAzure, peer: "2001:db8:2::1",
			want: want{code: network.CodeForbiddenByFirewall, how: authz.AddrPublicIP, rule: network.RuleDefaultDeny, client: "2001:db8:2::1"}},
		{name: "overlap: inner /24", fw: denyAzure, peer: "198.51.100.200",
			want: want{allowed: true, how: authz.AddrPublicIP, rule: "ipRules[5]=198.51.100.0/24", client: "198.51.100.200"}},
		{name: "overlap: outer /22", fw: denyAzure, peer: "198.51.103.255",
			want: want{allowed: true, how: authz.AddrPublicIP, rule: "ipRules[4]=198.51.100.0/22", client: "198.51.103.255"}},
		{name: "subnet rule, ids differing in case", fw: denyAzure, peer: "10.1.2.3",
			want: want{allowed: true, how: authz.AddrSubnet, rule: "virtualNetworkRules[0]=" + backendLower, client: "10.1.2.3", subnet: backendID}},
		{name: "subnet rule over ipv6", fw: denyAzure, peer: "fd00:1:2::5",
			want: want{allowed: true, how: authz.AddrSubnet, rule: "virtualNetworkRules[0]=" + backendLower, client: "fd00:1:2::5", subnet: backendID}},
		{name: "subnet without a rule", fw: denyAzure, peer: "10.9.3.4",
			want: want{code: network.CodeForbiddenByFirewall, how: authz.AddrSubnet, rule: network.RuleDefaultDeny, client: "10.9.3.4", subnet: otherID}},

		// 6. Otherwise.
		{name: "no rule matches", fw: denyAzure, peer: "198.18.0.1",
			want: want{code: network.CodeForbiddenByFirewall, how: authz.AddrPublicIP, rule: network.RuleDefaultDeny, client: "198.18.0.1"}},
		{name: "no address: refused when a rule is needed", fw: denyAzure,
			want: want{code: network.CodeForbiddenByFirewall, how: authz.AddrUnknown, rule: network.RuleDefaultDeny}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := request(tc.peer)
			r.PrivateLink = tc.link
			v := evaluate(tc.fw, r, tc.trusted, tc.inScope)
			check(t, v, tc.want)
			if v.TrustedService != tc.trusted || v.TrustedInScope != tc.inScope {
				t.Errorf("trusted fields not copied: %q %v", v.TrustedService, v.TrustedInScope)
			}
			if !v.Evaluated {
				t.Error("Evaluated not set")
			}
		})
	}
}

func check(t *testing.T, v authz.NetworkVerdict, w want) {
	t.Helper()
	if v.Allowed != w.allowed || v.Code != w.code || v.AuthType != w.how || v.Rule != w.rule {
		t.Errorf("verdict = {allowed %v, code %q, how %s, rule %q}, want {allowed %v, code %q, how %s, rule %q}",
			v.Allowed, v.Code, v.AuthType, v.Rule, w.allowed, w.code, w.how, w.rule)
	}
	client := ""
	if v.ClientAddr.IsValid() {
		client = v.ClientAddr.String()
	}
	if client != w.client {
		t.Errorf("client = %q, want %q (problem %q)", client, w.client, v.Problem)
	}
	if (client == "") != (v.Problem != "") {
		t.Errorf("an invalid client needs a problem and a valid one none: client %q, problem %q", client, v.Problem)
	}
	if v.SubnetID != w.subnet || v.PrivateEndpointID != w.endpoint || v.PrivateLinkUnknown != w.unknown {
		t.Errorf("placement = {subnet %q, endpoint %q, unknown %v}, want {%q, %q, %v}",
			v.SubnetID, v.PrivateEndpointID, v.PrivateLinkUnknown, w.subnet, w.endpoint, w.unknown)
	}
	if v.Allowed == (v.Code != "") {
		t.Errorf("an allow has no code and a deny has one: allowed %v, code %q", v.Allowed, v.Code)
	}
}

// A deny never becomes an allow through a missing firewall or decision.
func TestEvaluateFailsClosed(t *testing.T) {
	var nilFW *network.Firewall
	// The refusal is a recorded network verdict (audit and Explain show it
	// only when Evaluated is set), by the default-deny rule.
	want := authz.NetworkVerdict{Evaluated: true, Code: network.CodeForbiddenByFirewall, Rule: network.RuleDefaultDeny}
	if v := nilFW.Evaluate(&authz.Decision{}); v != want {
		t.Errorf("nil firewall: %+v, want %+v", v, want)
	}
	if c := nilFW.Connect(request("198.18.0.1")); c.ClientAddr.IsValid() || c.Problem == "" {
		t.Errorf("nil firewall placed a request: %+v", c)
	}
	fw := firewall(t, aclConfig("Enabled", "Deny", "AzureServices"))
	if v := fw.Evaluate(nil); v != want {
		t.Errorf("nil decision: %+v, want %+v", v, want)
	}
	if c := fw.Connect(nil); c.ClientAddr.IsValid() || c.Problem == "" {
		t.Errorf("nil request: %+v", c)
	}
	// A forged placement naming an endpoint that is not approved.
	d := &authz.Decision{}
	d.Network.PrivateEndpointID = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/privateEndpoints/evil"
	if v := fw.Evaluate(d); v.Allowed || v.Code != network.CodeForbiddenByConnection {
		t.Errorf("unapproved endpoint id: %+v", v)
	}
	// Stale verdict fields from a previous pass do not leak through.
	d = &authz.Decision{}
	d.Network.Allowed, d.Network.Rule, d.Network.AuthType = true, "ipRules[0]=0.0.0.0/0", authz.AddrPublicIP
	d.Network.Connection = fw.Connect(request("198.18.0.1"))
	if v := fw.Evaluate(d); v.Allowed || v.Rule != network.RuleDefaultDeny {
		t.Errorf("stale allow survived: %+v", v)
	}
}

func TestNewErrors(t *testing.T) {
	cfg, err := config.Parse("test.yaml", []byte(vaultYAML+`
network:
  trustedProxies: {cidrs: [10.0.0.0/8, "::/0"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = network.New(cfg.FirewallConfig())
	var fe *section.Error
	if !errors.Is(err, section.ErrInvalidValue) || !errors.As(err, &fe) || fe.Field != "network.trustedProxies.cidrs[1]" {
		t.Fatalf("trusting every address: err = %v", err)
	}
	// The configuration places it in its file.
	if err := cfg.Annotate(err); !errors.As(err, &fe) || fe.File != "test.yaml" || fe.Line == 0 {
		t.Fatalf("annotated: err = %v", err)
	}

	// Sections that were not validated have no parsed prefixes.
	raw := network.Config{NetworkAcls: &network.NetworkAcls{
		DefaultAction: "Deny", IPRules: []network.IPRule{{Value: "203.0.113.0/24"}},
	}}
	if _, err := network.New(raw); !errors.Is(err, section.ErrInvalidPrefix) {
		t.Fatalf("unparsed rules: err = %v", err)
	}
}

// Through the real pipeline, the firewall's codes reach Key Vault's 403s and
// the placement reaches a 401.
func TestPipeline(t *testing.T) {
	fw := firewall(t, aclConfig("Enabled", "Deny", "None"))
	op := authz.Operation{Plane: authz.PlaneData, Resource: "secrets", Permission: "get", Name: "SecretGet"}
	caller := &authz.Caller{ObjectID: "oid", ApplicationID: "app", TenantID: "t", Issuer: "https://sts.windows.net/t/"}
	for _, tc := range []struct {
		name    string
		peer    string
		auth    authz.Authenticator
		status  int
		inner   string
		netInfo string
	}{
		{"refused by the firewall", "198.18.0.1", authOK{caller}, 403, network.CodeForbiddenByFirewall, "conn_type=Ipv4;addr=198.18.0.1;act_addr_fam=InterNetwork;"},
		{"admitted, then the policy", "203.0.113.9", authOK{caller}, 200, "", "conn_type=Ipv4;addr=203.0.113.9;act_addr_fam=InterNetwork;"},
		{"401 still says where from", "10.1.2.3", authOK{}, 401, "", "conn_type=Subnet;subnet=" + backendID + ";addr=10.1.2.3;act_addr_fam=InterNetwork;"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &authz.Pipeline{Classifier: classify{op}, Authenticator: tc.auth, Firewall: fw, Policy: allowAll{}}
			d := p.Decide(t.Context(), request(tc.peer))
			resp := d.Response()
			status := 200
			if !resp.Allowed {
				status = resp.Status
			}
			if status != tc.status {
				t.Fatalf("status %d, want %d (%s)", status, tc.status, resp.Body)
			}
			if tc.inner != "" && !strings.Contains(resp.Body, `"innererror":{"code":"`+tc.inner+`"}`) {
				t.Errorf("body %s lacks %s", resp.Body, tc.inner)
			}
			found := false
			for _, h := range resp.Headers {
				if h.Name == "x-ms-keyvault-network-info" {
					found = h.Value == tc.netInfo
					if !found {
						t.Errorf("network info %q, want %q", h.Value, tc.netInfo)
					}
				}
			}
			if !found && tc.netInfo != "" {
				t.Errorf("no network info header in %+v", resp.Headers)
			}
		})
	}
}

type classify struct{ op authz.Operation }

func (c classify) Classify(*authz.Request) (authz.Operation, *authz.Denial) { return c.op, nil }

type authOK struct{ caller *authz.Caller }

func (a authOK) Authenticate(context.Context, *authz.Request, *authz.Operation) (*authz.Caller, *authz.Denial, error) {
	if a.caller == nil {
		return nil, &authz.Denial{Status: 401, Code: "Unauthorized", Message: "AKV10000: Request is missing a Bearer or PoP token.", Challenge: true}, nil
	}
	return a.caller, nil, nil
}

type allowAll struct{}

func (allowAll) Authorize(context.Context, *authz.Decision) (authz.AuthzVerdict, error) {
	return authz.AuthzVerdict{Allowed: true, Model: authz.ModelAccessPolicy}, nil
}

// properties.privateEndpointConnections, as az keyvault show prints them,
// decide which network.privateEndpoints are approved: an Approved
// connection admits its endpoint, Pending and Rejected ones never do, and
// an endpoint with no connection is not the vault's.
func TestPrivateEndpointConnectionStates(t *testing.T) {
	conn := func(pe, status string) string {
		return `
    - etag: '"0a00b2c3-0000-0d00-0000-65f1a2b30000"'
      id: /subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/contoso-vault/privateEndpointConnections/` + status + `
      privateEndpoint: {id: ` + strings.ToLower(pe) + `, resourceGroup: rg}
      privateLinkServiceConnectionState: {actionsRequired: None, description: "", status: ` + status + `}
      provisioningState: Succeeded
      resourceGroup: rg`
	}
	const pe3 = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/privateEndpoints/pe3"
	fw := firewall(t, `
properties:
  publicNetworkAccess: Disabled
  privateEndpointConnections:`+conn(pe1, "Approved")+conn(pe2, "Pending")+conn(pe3, "Rejected")+`
network:
  privateEndpoints:
    - {id: `+pe1+`, linkId: 1}
    - {id: `+pe2+`, linkId: 2}
    - {id: `+pe3+`, linkId: 3}
    - {id: /subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/privateEndpoints/pe4, linkId: 4}
`)
	for link, want := range map[uint32]string{1: "privateEndpoints[0]=" + pe1, 2: "", 3: "", 4: ""} {
		r := request("172.16.0.9")
		r.PrivateLink = authz.PrivateLink{AzureLinkID: link, HasAzureLinkID: true}
		v := evaluate(fw, r, "", false)
		if want != "" {
			if !v.Allowed || v.Rule != want {
				t.Errorf("link %d: %+v, want allowed by %s", link, v, want)
			}
			continue
		}
		if v.Allowed || v.Code != network.CodeForbiddenByConnection || v.Rule != network.RuleUnapprovedEndpoint {
			t.Errorf("link %d: %+v, want ForbiddenByConnection as an unapproved endpoint", link, v)
		}
	}
}
