package peer

import (
	"crypto/x509/pkix"
	"testing"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/authztest"
)

// benchServices binds a realistic handful of services, one per pattern kind
// and a few more, so lookups are not trivially small.
func benchServices() []TrustedService {
	return []TrustedService{
		svc("Backup", "spiffe://trusted.example/azure-backup"),
		svc("Storage", "spiffe://trusted.example/ns/storage/*"),
		svc("AppService", "dns:appservice.trusted.example"),
		svc("DiskEncryption", "subject:CN=disk-encryption,O=Trusted"),
		svc("SqlDatabase", "spiffe://trusted.example/sql", "dns:sql.trusted.example"),
		svc("EventHubs", "spiffe://trusted.example/ns/eventhubs/*"),
		svc("ServiceBus", "spiffe://trusted.example/ns/servicebus/*"),
	}
}

func BenchmarkRecognizePrincipal(b *testing.B) {
	m := mustMatcher(b, TrustedServices{Services: benchServices()})
	for _, bc := range []struct{ name, principal, want string }{
		{"spiffe-exact", "spiffe://trusted.example/azure-backup", "Backup"},
		{"spiffe-prefix", "spiffe://trusted.example/ns/storage/sa/blob-encryption", "Storage"},
		{"spiffe-miss", "spiffe://mesh.example/ns/default/sa/web", ""},
		{"dns", "AppService.Trusted.Example", "AppService"},
		{"subject", "CN=disk-encryption,O=Trusted", "DiskEncryption"},
		{"subject-respelled", "cn=disk-encryption,2.5.4.10=Trusted", "DiskEncryption"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := &authz.Request{Principal: bc.principal}
			caller := &authz.Caller{}
			b.ReportAllocs()
			for b.Loop() {
				if name, _ := m.Recognize(req, caller, opKeyWrap); name != bc.want {
					b.Fatalf("got %q", name)
				}
			}
		})
	}
}

func BenchmarkRecognizeCertificate(b *testing.B) {
	ca := authztest.NewTestCA(b)
	leaf := ca.Issue(authztest.CertOptions{URIs: []string{"spiffe://trusted.example/azure-backup"},
		Subject: pkix.Name{CommonName: "azure-backup"}})
	req := certReq(leaf)
	caller := &authz.Caller{}
	for _, mode := range []struct {
		name   string
		caFile string
	}{{"envoy-verified", ""}, {"caFile", ca.WriteBundle()}} {
		m := mustMatcher(b, TrustedServices{CAFile: mode.caFile, Services: benchServices()})
		b.Run(mode.name+"/cached", func(b *testing.B) {
			m.Recognize(req, caller, opKeyGet)
			b.ReportAllocs()
			for b.Loop() {
				if name, _ := m.Recognize(req, caller, opKeyGet); name != "Backup" {
					b.Fatalf("got %q", name)
				}
			}
		})
		b.Run(mode.name+"/cached-parallel", func(b *testing.B) {
			m.Recognize(req, caller, opKeyGet)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if name, _ := m.Recognize(req, caller, opKeyGet); name != "Backup" {
						b.Errorf("got %q", name)
						return
					}
				}
			})
		})
		b.Run(mode.name+"/first-sight", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m.cache.reset()
				if name, _ := m.Recognize(req, caller, opKeyGet); name != "Backup" {
					b.Fatalf("got %q", name)
				}
			}
		})
	}
}
