package peer

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/vaultwall/vaultwall/authz"
)

// Service is one entry of the trusted-service catalog: a platform service
// Key Vault lets through its firewall when the vault owner allows trusted
// services, and the operations its scenario needs. Scope is the upper bound
// of the bypass; the access policy (or RBAC) still decides, and a binding in
// config may narrow it, never widen it.
type Service struct {
	// Name is the catalog name config binds principals to, e.g. "Backup".
	Name string `json:"name"`
	// Service is the platform service as Key Vault's documentation names it.
	Service string `json:"service"`
	// Scenario is the supported scenario the bypass covers.
	Scenario string `json:"scenario"`
	// Scope is family → access-policy permissions, in the spec's casing.
	// It never holds "all".
	Scope authz.Permissions `json:"scope"`
	// Note explains a scope vaultwall chose itself, for the services Key
	// Vault lists without a proposed scope (reference/trusted-services.md
	// proposes the others).
	Note string `json:"note,omitempty"`
}

// ScopeString renders the scope as "keys: get, wrapKey; secrets: get", in
// the family order keys, secrets, certificates, storage.
func (s Service) ScopeString() string { return scopeString(s.Scope) }

func scopeString(p authz.Permissions) string {
	var parts []string
	for _, f := range []struct {
		name  string
		perms []string
	}{
		{authz.FamilyKeys, p.Keys}, {authz.FamilySecrets, p.Secrets},
		{authz.FamilyCertificates, p.Certificates}, {authz.FamilyStorage, p.Storage},
	} {
		if len(f.perms) > 0 {
			parts = append(parts, f.name+": "+strings.Join(f.perms, ", "))
		}
	}
	return strings.Join(parts, "; ")
}

// Shorthands for the catalog table.
func keys(p ...string) []string    { return p }
func secrets(p ...string) []string { return p }
func certs(p ...string) []string   { return p }

var cmk = keys("get", "wrapKey", "unwrapKey")

// catalog is the built-in list. The first block is
// reference/trusted-services.md's table, scopes as proposed there; the
// second adds the services of Key Vault's 2024-01 list (keyvault-spec §2)
// that the table leaves out, with scopes chosen the same way: the smallest
// set of operations the documented scenario performs at run time.
var catalog = []Service{
	{Name: "VirtualMachinesDeployment", Service: "Azure Virtual Machines deployment service",
		Scenario: "deploy certificates to VMs from a customer-managed vault",
		Scope:    authz.Permissions{Secrets: secrets("get")}},
	{Name: "ResourceManagerTemplateDeployment", Service: "Azure Resource Manager template deployment service",
		Scenario: "pass secure values during deployment",
		Scope:    authz.Permissions{Secrets: secrets("get")}},
	{Name: "DiskEncryption", Service: "Azure Disk Encryption volume encryption service",
		Scenario: "BitLocker key / DM passphrase and key-encryption key during VM deployment",
		Scope:    authz.Permissions{Secrets: secrets("get", "set"), Keys: keys("get", "wrapKey", "unwrapKey")}},
	{Name: "Backup", Service: "Azure Backup",
		Scenario: "back up and restore keys and secrets during VM backup",
		Scope: authz.Permissions{Keys: keys("get", "list", "backup", "restore"),
			Secrets: secrets("get", "list", "backup", "restore")}},
	{Name: "ExchangeSharePointOnline", Service: "Exchange Online & SharePoint Online",
		Scenario: "customer key for Storage Service Encryption",
		Scope:    authz.Permissions{Keys: cmk}},
	{Name: "InformationProtection", Service: "Azure Information Protection",
		Scenario: "tenant key",
		Scope:    authz.Permissions{Keys: keys("get", "decrypt", "sign", "unwrapKey")}},
	{Name: "AppService", Service: "Azure App Service",
		Scenario: "deploying a Web App certificate only",
		Scope:    authz.Permissions{Certificates: certs("get"), Secrets: secrets("get")}},
	{Name: "SqlDatabase", Service: "Azure SQL Database",
		Scenario: "TDE with bring-your-own-key (SQL Database, Synapse)",
		Scope:    authz.Permissions{Keys: cmk}},
	{Name: "MySql", Service: "Azure Database for MySQL",
		Scenario: "data encryption",
		Scope:    authz.Permissions{Keys: cmk}},
	{Name: "PostgreSqlSingleServer", Service: "Azure Database for PostgreSQL Single server",
		Scenario: "data encryption",
		Scope:    authz.Permissions{Keys: cmk}},
	{Name: "Storage", Service: "Azure Storage",
		Scenario: "Storage Service Encryption with customer-managed keys",
		Scope:    authz.Permissions{Keys: cmk}},
	{Name: "DataLakeStore", Service: "Azure Data Lake Store",
		Scenario: "encryption with a customer-managed key",
		Scope:    authz.Permissions{Keys: cmk}},
	{Name: "SynapseAnalytics", Service: "Azure Synapse Analytics",
		Scenario: "encryption with customer-managed keys",
		Scope:    authz.Permissions{Keys: cmk}},
	{Name: "Databricks", Service: "Azure Databricks",
		Scenario: "analytics service (vault-backed secret scopes, managed-service CMK)",
		Scope:    authz.Permissions{Secrets: secrets("get", "list"), Keys: cmk}},
	{Name: "ApiManagement", Service: "Azure API Management",
		Scenario: "deploy certificates for custom domains with a managed identity",
		Scope:    authz.Permissions{Certificates: certs("get"), Secrets: secrets("get", "list")}},
	{Name: "DataFactory", Service: "Azure Data Factory",
		Scenario: "fetch data-store credentials",
		Scope:    authz.Permissions{Secrets: secrets("get", "list")}},
	{Name: "EventHubs", Service: "Azure Event Hubs",
		Scenario: "customer-managed keys",
		Scope:    authz.Permissions{Keys: cmk}},
	{Name: "ServiceBus", Service: "Azure Service Bus",
		Scenario: "customer-managed keys",
		Scope:    authz.Permissions{Keys: cmk}},
	{Name: "ImportExport", Service: "Azure Import/Export",
		Scenario: "customer-managed keys",
		Scope:    authz.Permissions{Keys: cmk}},
	{Name: "ContainerRegistry", Service: "Azure Container Registry",
		Scenario: "registry encryption with customer-managed keys",
		Scope:    authz.Permissions{Keys: cmk}},
	{Name: "ApplicationGateway", Service: "Azure Application Gateway",
		Scenario: "vault certificates for HTTPS listeners",
		Scope:    authz.Permissions{Certificates: certs("get"), Secrets: secrets("get")}},
	{Name: "FrontDoorStandardPremium", Service: "Azure Front Door Standard/Premium",
		Scenario: "vault certificates for HTTPS",
		Scope:    authz.Permissions{Certificates: certs("get", "list"), Secrets: secrets("get", "list")}},
	{Name: "FrontDoorClassic", Service: "Azure Front Door Classic",
		Scenario: "vault certificates for HTTPS",
		Scope:    authz.Permissions{Certificates: certs("get", "list"), Secrets: secrets("get", "list")}},
	{Name: "Purview", Service: "Microsoft Purview",
		Scenario: "credentials for source authentication",
		Scope:    authz.Permissions{Secrets: secrets("get", "list")}},
	{Name: "MachineLearning", Service: "Azure Machine Learning",
		Scenario: "secure a workspace in a virtual network",
		Scope:    authz.Permissions{Secrets: secrets("get", "list", "set", "delete"), Keys: cmk}},

	// Key Vault's later list.
	{Name: "Batch", Service: "Azure Batch",
		Scenario: "customer-managed keys for Batch accounts; account keys of user-subscription Batch accounts",
		Scope:    authz.Permissions{Keys: cmk, Secrets: secrets("get", "list", "set", "delete")},
		Note: "Two documented scenarios: account encryption with a customer-managed key (keys get, wrapKey, unwrapKey, " +
			"as for every CMK service) and user-subscription pool allocation, where the Batch service keeps the " +
			"account's keys as secrets in the vault and so reads, lists, writes and deletes them."},
	{Name: "BotService", Service: "Azure AI Bot Service",
		Scenario: "encryption of bot data at rest with customer-managed keys",
		Scope:    authz.Permissions{Keys: cmk},
		Note:     "A customer-managed-key scenario: keys get, wrapKey, unwrapKey, like Storage."},
	{Name: "Cdn", Service: "Azure CDN",
		Scenario: "HTTPS on a custom domain with a vault certificate",
		Scope:    authz.Permissions{Certificates: certs("get", "list"), Secrets: secrets("get", "list")},
		Note: "Same scenario as Front Door (Azure CDN's own docs grant certificates and secrets get and list): " +
			"the certificate's private key is read through its secret, and new versions are found by listing."},
	{Name: "FirewallPremium", Service: "Azure Firewall Premium",
		Scenario: "TLS-inspection intermediate CA certificate",
		Scope:    authz.Permissions{Secrets: secrets("get", "list")},
		Note: "Azure Firewall reads the intermediate CA (certificate and private key) through the secrets endpoint " +
			"only; its docs grant secrets get and list, nothing on certificates or keys."},
	{Name: "DiskEncryptionSet", Service: "Azure Disk Storage (disk encryption set)",
		Scenario: "server-side encryption of managed disks with customer-managed keys",
		Scope:    authz.Permissions{Keys: cmk},
		Note:     "A customer-managed-key scenario: the disk encryption set's identity wraps and unwraps data keys."},
	{Name: "PolicyScan", Service: "Azure Policy (data-plane scan)",
		Scenario: "evaluate Microsoft.KeyVault.Data policies on keys, secrets and certificates",
		Scope: authz.Permissions{Keys: keys("get", "list"), Secrets: secrets("list"),
			Certificates: certs("get", "list")},
		Note: "The scan reads metadata only: listing gives names and attributes; key type/size and certificate " +
			"policies need get. Secrets get would return secret values, which no policy needs, so secrets are list only."},
	{Name: "M365DataAtRestEncryption", Service: "Microsoft 365 data-at-rest encryption (Customer Key)",
		Scenario: "multi-workload data encryption policies with customer keys",
		Scope:    authz.Permissions{Keys: cmk},
		Note:     "The same key operations as ExchangeSharePointOnline, which it generalises to other workloads."},
	{Name: "MySqlFlexibleServer", Service: "Azure Database for MySQL Flexible server",
		Scenario: "data encryption with customer-managed keys",
		Scope:    authz.Permissions{Keys: cmk},
		Note: "As MySql. Microsoft's setup guide also grants keys list, which the portal's key picker uses under the " +
			"operator's identity; the server itself only reads and wraps/unwraps with the configured key."},
	{Name: "PostgreSqlFlexibleServer", Service: "Azure Database for PostgreSQL Flexible server",
		Scenario: "data encryption with customer-managed keys",
		Scope:    authz.Permissions{Keys: cmk},
		Note:     "As PostgreSqlSingleServer (see MySqlFlexibleServer on keys list)."},
}

// catalogIndex finds an entry by its exact name.
var catalogIndex = func() map[string]int {
	m := make(map[string]int, len(catalog))
	for i, s := range catalog {
		m[s.Name] = i
	}
	return m
}()

// Catalog returns every trusted service vaultwall knows, in table order.
// The result is a copy.
func Catalog() []Service {
	out := make([]Service, len(catalog))
	for i, s := range catalog {
		out[i] = s.clone()
	}
	return out
}

// Lookup returns the catalog entry with exactly this name.
func Lookup(name string) (Service, bool) {
	i, ok := catalogIndex[name]
	if !ok {
		return Service{}, false
	}
	return catalog[i].clone(), true
}

func (s Service) clone() Service {
	s.Scope = authz.Permissions{
		Keys: slices.Clone(s.Scope.Keys), Secrets: slices.Clone(s.Scope.Secrets),
		Certificates: slices.Clone(s.Scope.Certificates), Storage: slices.Clone(s.Scope.Storage),
	}
	return s
}

// WriteTable prints the catalog as an aligned table with the columns NAME,
// SERVICE, SCENARIO and SCOPE (vaultwall trusted-services list).
func WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSERVICE\tSCENARIO\tSCOPE")
	for _, s := range catalog {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.Service, s.Scenario, s.ScopeString())
	}
	return tw.Flush()
}
