// Package network is the vault's firewall: Key Vault's networkAcls,
// publicNetworkAccess and private endpoints, compiled once per configuration
// into an authz.Firewall.
//
// It owns the configuration's network sections (section.go): NetworkAcls
// (properties.networkAcls), Network (network: subnets, private endpoints,
// trusted proxies) and properties.privateEndpointConnections, with their
// defaults and Validate, which parses what New compiles. config composes
// them; New takes them as a Config, never the whole configuration.
//
// It owns where a request came from (Connect: client address, inventory
// subnet, private endpoint) and whether the network lets it through
// (Evaluate). It does not recognise trusted services — the pipeline fills
// Decision.Network.TrustedService and TrustedInScope before Evaluate — and it
// never sees a token.
//
// # Client address and X-Forwarded-For
//
// The client is Request.Peer (Envoy's source.address: the TCP peer, or the
// source a PROXY-protocol header restored), IPv4-mapped IPv6 unmapped,
// unless network.trustedProxies says to believe X-Forwarded-For:
//
//   - The chain is the X-Forwarded-For entries (comma-separated, spaces
//     trimmed) followed by the peer. Envoy with use_remote_address: true has
//     already appended its peer before calling us, so the peer is not added
//     a second time when the last entry equals it.
//   - hops: N > 0 — the client is the entry N positions left of the
//     rightmost (chain[len-1-N]). hops: 1 is one L7 load balancer in front
//     of Envoy.
//   - cidrs — walking from the right, entries inside a trusted range are
//     skipped; the first entry outside them is the client. A peer outside
//     them is the client, so a caller that reaches Envoy directly cannot
//     forge its address. Prefer cidrs (or both) to hops alone: hops cannot
//     tell a request that bypassed the proxies.
//   - both — at most N entries are skipped, and each skipped one must be
//     inside the ranges: the walk stops at the first entry outside them.
//   - When the chain runs out before the walk ends (fewer hops than
//     configured, or every entry is a trusted proxy), the client is the
//     peer: the request did not come through the proxies.
//   - hops: 0 and no cidrs — X-Forwarded-For is ignored entirely; whatever a
//     client sends cannot change the verdict. A range of /0 is refused at
//     load, since it would let any client choose its address.
//
// Only the entries the walk reaches are read; those left of the client are
// the client's own claims and are never parsed. Every entry the walk reaches
// must be an address. Accepted forms: a bare IPv4 or IPv6 address (what
// Envoy, nginx, AWS ALB and Azure Front Door write), IPv4:port (Azure
// Application Gateway and IIS ARR append the client's port) and [IPv6] or
// [IPv6]:port (the only unambiguous way to write an IPv6 address with a
// port). A port never changes the address it follows, so it is dropped. An
// unbracketed IPv6 address is always read as an address, never as an address
// and a port. Refused: empty entries, zones (fe80::1%eth0 means nothing
// beyond one link), RFC 7239 obfuscated identifiers ("unknown", "_hidden"),
// IPv4 with leading zeros, anything else. A refused entry leaves ClientAddr
// invalid and Connection.Problem saying which entry and why; Evaluate then
// refuses unless no address rule is needed (private link, public access
// disabled, defaultAction Allow, a trusted service).
//
// A loopback peer is a special case of Envoy's: it appends its own address
// instead, so the chain has one extra hop; list both in cidrs.
//
// # Subnets and private endpoints
//
// SubnetID is the network.subnets entry whose addressPrefixes hold the
// client address (its configured id, original casing); virtualNetworkRules
// name subnets case-insensitively, as ARM echoes them lower-cased. A request
// whose PROXY-protocol TLVs carry a private-link identity (Azure LINKID, TLV
// 0xEE; AWS VPC endpoint id, TLV 0xEA) is matched against
// network.privateEndpoints: an approved one sets PrivateEndpointID, any
// other sets PrivateLinkUnknown. Every entry is approved unless
// properties.privateEndpointConnections is given: then only entries with an
// Approved connection are (PrivateEndpoint.Approved); a Pending,
// Rejected or Disconnected one is an unknown endpoint here. A private-link source address lives in the
// consumer's address space, so it names no subnet and no public rule ever
// applies to it.
//
// # Evaluation order
//
// Key Vault's, reference §1:
//
//  1. approved private endpoint → allow (PrivateLink); an unapproved one →
//     ForbiddenByConnection;
//  2. publicNetworkAccess Disabled → a trusted service in scope passes with
//     bypass AzureServices, anything else → ForbiddenByConnection;
//  3. no networkAcls, or defaultAction Allow → allow;
//  4. bypass AzureServices and a trusted service in scope → allow
//     (TrustedService); one out of scope is an ordinary caller;
//  5. client address in an ipRule → allow (PublicIP; the most specific rule,
//     the lowest index among equal ones), or in a subnet a
//     virtualNetworkRule names → allow (Subnet);
//  6. otherwise ForbiddenByFirewall.
//
// Absent networkAcls mean ARM's defaults: defaultAction Allow and bypass
// AzureServices (which matters only under publicNetworkAccess Disabled).
// NetworkVerdict.Rule names the deciding rule: privateEndpoints[k]=<id>,
// publicNetworkAccess=Disabled, networkAcls=none, defaultAction=Allow,
// bypass=AzureServices(<service>), ipRules[i]=<value>,
// virtualNetworkRules[j]=<id>, privateEndpoints=unapproved,
// defaultAction=Deny.
//
// # Compiled at load
//
// IP rules and subnet prefixes are flattened into sorted disjoint intervals,
// each labelled with its most specific prefix, behind a front table indexed
// by the address's first 16 bits: a lookup is one array index and a binary
// search over the few intervals of one bucket, so its cost does not grow
// with the number of rules spread over the address space (rules packed into
// one /16 cost a binary search over that bucket). The front tables are of
// fixed size (256 KiB per family and set, at most 1 MiB per configuration)
// so that a small rule set gets no cache advantage a large one lacks. The
// families are separate: an IPv6 rule such as ::/0 never admits an IPv4
// client (ParsePrefix unmaps IPv4-mapped rules to IPv4 ones). Rule names are
// rendered at load. Connect and Evaluate do not allocate, X-Forwarded-For
// included, except to describe a refused entry.
//
// Imports: the standard library, authz and authz/section.
package network
