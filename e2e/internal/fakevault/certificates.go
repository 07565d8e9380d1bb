package fakevault

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/http"
	"testing"
	"time"
)

type certificate struct {
	name, version string
	cert          *x509.Certificate
	created       time.Time
}

func (ct *certificate) bundle(base string) map[string]any {
	m := ct.item(base)
	m["id"] = base + "/certificates/" + ct.name + "/" + ct.version
	m["kid"] = base + "/keys/" + ct.name + "/" + ct.version
	m["sid"] = base + "/secrets/" + ct.name + "/" + ct.version
	m["cer"] = base64.StdEncoding.EncodeToString(ct.cert.Raw)
	m["policy"] = map[string]any{
		"id":           base + "/certificates/" + ct.name + "/policy",
		"key_props":    map[string]any{"exportable": true, "kty": "RSA", "key_size": 2048, "reuse_key": false},
		"secret_props": map[string]any{"contentType": "application/x-pem-file"},
		"x509_props":   map[string]any{"subject": "CN=" + ct.cert.Subject.CommonName, "validity_months": 12},
		"issuer":       map[string]any{"name": "Self"},
		"attributes":   map[string]any{"enabled": true, "created": ct.created.Unix(), "updated": ct.created.Unix()},
	}
	return m
}

func (ct *certificate) item(base string) map[string]any {
	sum := sha1.Sum(ct.cert.Raw)
	a := attributes{}.json(ct.created)
	a["nbf"], a["exp"] = ct.cert.NotBefore.Unix(), ct.cert.NotAfter.Unix()
	return map[string]any{
		"id":         base + "/certificates/" + ct.name,
		"x5t":        b64url(sum[:]),
		"attributes": a,
	}
}

// SeedCertificate creates a self-signed certificate the way Key Vault
// does: one version shared by the certificate, its managed key and its
// managed secret (PEM of key and certificate, as GET /secrets/{name}
// returns it). It returns the certificate.
func (v *Vault) SeedCertificate(tb testing.TB, name, commonName string) *x509.Certificate {
	tb.Helper()
	v.mu.Lock()
	defer v.mu.Unlock()
	k, err := v.newKey(name, "RSA", 2048, []string{"sign", "verify", "wrapKey", "unwrapKey", "encrypt", "decrypt"})
	if err != nil {
		tb.Fatalf("fakevault: certificate key: %v", err)
	}
	k.managed = true
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{commonName},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.priv.PublicKey, k.priv)
	if err != nil {
		tb.Fatalf("fakevault: certificate: %v", err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(k.priv)
	value := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	v.secrets[name] = append(v.secrets[name], &secret{
		name: name, version: k.version, value: value, contentType: "application/x-pem-file",
		created: now, managed: true,
	})
	v.certs[name] = append(v.certs[name], &certificate{name: name, version: k.version, cert: cert, created: now})
	return cert
}

func (v *Vault) routeCertificates(c *call, seg []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if c.r.Method != http.MethodGet {
		c.badRoute()
		return
	}
	switch {
	case len(seg) == 0 || len(seg) == 1 && seg[0] == "":
		var items []map[string]any
		for _, cs := range v.certs {
			items = append(items, cs[len(cs)-1].item(c.base))
		}
		c.page(items)
	case len(seg) == 1 || len(seg) == 2:
		cs := v.certs[seg[0]]
		var ct *certificate
		switch {
		case len(cs) == 0:
		case len(seg) == 1 || seg[1] == "":
			ct = cs[len(cs)-1]
		default:
			for _, x := range cs {
				if x.version == seg[1] {
					ct = x
				}
			}
		}
		if ct == nil {
			c.notFound("certificate", seg[0])
			return
		}
		c.ok(ct.bundle(c.base))
	default:
		c.badRoute()
	}
}
