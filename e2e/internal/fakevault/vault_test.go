package fakevault_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/e2e/internal/azure"
	"github.com/vaultwall/vaultwall/e2e/internal/fakevault"
	"github.com/vaultwall/vaultwall/e2e/internal/front"
)

const (
	host      = "contoso.vault.azure.net"
	vaultURL  = "https://" + host
	challenge = `Bearer authorization="https://login.example.test/00000000-0000-0000-0000-000000000001", resource="https://vault.azure.net"`
)

var version32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

// direct is a vault the SDK talks to without a front: the vault itself
// challenges, as Key Vault does.
func direct(t *testing.T, pageSize int) (*fakevault.Vault, azure.Network, *authztest.TestCA) {
	t.Helper()
	ca := authztest.NewTestCAWith(t, authztest.TestCAOptions{CommonName: "vault CA"})
	cert := ca.IssueServer(host).TLS()
	v := fakevault.Start(t, fakevault.Options{Cert: &cert, PageSize: pageSize, Challenge: challenge})
	addr := netip.MustParseAddrPort(v.URL().Host)
	return v, azure.Route(host, addr, front.Client{RootCAs: ca.Pool()}), ca
}

func TestSecretsWithTheSDK(t *testing.T) {
	v, n, _ := direct(t, 2)
	cred := azure.StaticCredential("tok")
	c := azure.SecretsClient(t, vaultURL, cred, n)
	ctx := t.Context()

	var first string
	for i, name := range []string{"s1", "s2", "s3", "s1"} {
		resp, err := c.SetSecret(ctx, name, azsecrets.SetSecretParameters{Value: to.Ptr("v" + name + string(rune('0'+i))), ContentType: to.Ptr("text/plain"), Tags: map[string]*string{"env": to.Ptr("e2e")}}, nil)
		if err != nil {
			t.Fatalf("SetSecret %s: %v", name, err)
		}
		if resp.ID.Name() != name || !version32.MatchString(resp.ID.Version()) || !strings.HasPrefix(string(*resp.ID), vaultURL+"/secrets/"+name+"/") {
			t.Errorf("id %q", *resp.ID)
		}
		if i == 0 {
			first = resp.ID.Version()
		}
	}

	got, err := c.GetSecret(ctx, "s1", "", nil)
	if err != nil || *got.Value != "vs13" || *got.ContentType != "text/plain" || !*got.Attributes.Enabled || *got.Tags["env"] != "e2e" {
		t.Fatalf("GetSecret latest: %+v, %v", got, err)
	}
	old, err := c.GetSecret(ctx, "s1", first, nil)
	if err != nil || *old.Value != "vs10" {
		t.Fatalf("GetSecret version: %v, %v", old.Value, err)
	}

	var names []string
	pages := 0
	for p := c.NewListSecretPropertiesPager(nil); p.More(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		pages++
		for _, s := range page.Value {
			names = append(names, s.ID.Name())
			if s.ID.Version() != "" {
				t.Errorf("list item id %q carries a version", *s.ID)
			}
		}
	}
	if strings.Join(names, ",") != "s1,s2,s3" || pages != 2 {
		t.Errorf("list: %v in %d pages, want s1,s2,s3 in 2", names, pages)
	}
	var versions int
	for p := c.NewListSecretPropertiesVersionsPager("s1", nil); p.More(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		versions += len(page.Value)
	}
	if versions != 2 {
		t.Errorf("s1 has %d versions, want 2", versions)
	}

	del, err := c.DeleteSecret(ctx, "s2", nil)
	if err != nil || *del.RecoveryID != vaultURL+"/deletedsecrets/s2" || del.DeletedDate == nil || del.ScheduledPurgeDate == nil {
		t.Fatalf("DeleteSecret: %+v, %v", del, err)
	}
	_, err = c.GetSecret(ctx, "s2", "", nil)
	kv, ok := azure.KeyVaultError(err)
	if !ok || kv.StatusCode != 404 || kv.ErrorCode != "SecretNotFound" || kv.Code != "SecretNotFound" {
		t.Errorf("get deleted secret: %+v (%v)", kv, err)
	}
	if _, err := c.GetDeletedSecret(ctx, "s2", nil); err != nil {
		t.Errorf("GetDeletedSecret: %v", err)
	}

	// The SDK's first request carries no token; the retry after the
	// challenge does, and the credential was asked for Key Vault's scope
	// in the challenge's tenant.
	reqs := v.Requests()
	if reqs[0].Header.Get("Authorization") != "" || reqs[1].Header.Get("Authorization") != "Bearer tok" {
		t.Errorf("authorization on the first two requests: %q, %q", reqs[0].Header.Get("Authorization"), reqs[1].Header.Get("Authorization"))
	}
	tr := cred.Requests()[0]
	if len(tr.Scopes) != 1 || tr.Scopes[0] != "https://vault.azure.net/.default" || tr.TenantID != "00000000-0000-0000-0000-000000000001" {
		t.Errorf("token request %+v", tr)
	}
}

func TestKeysWithTheSDK(t *testing.T) {
	_, n, _ := direct(t, 0)
	c := azure.KeysClient(t, vaultURL, azure.StaticCredential("tok"), n)
	ctx := t.Context()

	created, err := c.CreateKey(ctx, "k1", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr[int32](2048)}, nil)
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	kid := *created.Key.KID
	if kid.Name() != "k1" || !version32.MatchString(kid.Version()) || !strings.HasPrefix(string(kid), vaultURL+"/keys/k1/") {
		t.Errorf("kid %q", kid)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(created.Key.N), E: int(new(big.Int).SetBytes(created.Key.E).Int64())}
	if pub.N.BitLen() != 2048 || pub.E != 65537 {
		t.Fatalf("public key: %d bits, e=%d", pub.N.BitLen(), pub.E)
	}
	got, err := c.GetKey(ctx, "k1", kid.Version(), nil)
	if err != nil || string(*got.Key.KID) != string(kid) {
		t.Fatalf("GetKey: %v", err)
	}

	cek := []byte("0123456789abcdef0123456789abcdef")
	for _, alg := range []azkeys.EncryptionAlgorithm{azkeys.EncryptionAlgorithmRSAOAEP256, azkeys.EncryptionAlgorithmRSAOAEP} {
		for _, version := range []string{kid.Version(), ""} {
			w, err := c.WrapKey(ctx, "k1", version, azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: cek}, nil)
			if err != nil {
				t.Fatalf("WrapKey %s %q: %v", alg, version, err)
			}
			if string(*w.KID) != string(kid) || string(w.Result) == string(cek) {
				t.Errorf("WrapKey %s: kid %q", alg, *w.KID)
			}
			u, err := c.UnwrapKey(ctx, "k1", version, azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: w.Result}, nil)
			if err != nil || string(u.Result) != string(cek) {
				t.Fatalf("UnwrapKey %s: %q, %v", alg, u.Result, err)
			}
		}
	}

	digest := sha256.Sum256([]byte("sign me"))
	s, err := c.Sign(ctx, "k1", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmRS256), Value: digest[:]}, nil)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], s.Result); err != nil {
		t.Errorf("RS256 signature does not verify with the key's JWK: %v", err)
	}
	vr, err := c.Verify(ctx, "k1", "", azkeys.VerifyParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmRS256), Digest: digest[:], Signature: s.Result}, nil)
	if err != nil || !*vr.Value {
		t.Errorf("Verify: %v, %v", vr.Value, err)
	}

	_, err = c.GetKey(ctx, "nope", "", nil)
	if kv, ok := azure.KeyVaultError(err); !ok || kv.StatusCode != 404 || kv.ErrorCode != "KeyNotFound" {
		t.Errorf("missing key: %+v", kv)
	}
	_, err = c.CreateKey(ctx, "ec", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC)}, nil)
	if kv, ok := azure.KeyVaultError(err); !ok || kv.StatusCode != 400 || kv.ErrorCode != "BadParameter" {
		t.Errorf("EC key: %+v", kv)
	}
}

func TestKeyPaths(t *testing.T) {
	// The three spellings of a key operation's version reach the same key.
	v, _, ca := direct(t, 0)
	hc := (front.Client{RootCAs: ca.Pool(), ServerName: host}).HTTPClient(t, netip.MustParseAddrPort(v.URL().Host))
	post := func(path, body string) (int, map[string]any) {
		req, _ := http.NewRequestWithContext(t.Context(), "POST", "https://"+host+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer tok")
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	code, m := post("/keys/k2/create?api-version=2025-07-01", `{"kty":"RSA"}`)
	if code != 200 {
		t.Fatalf("create: %d %v", code, m)
	}
	kid := m["key"].(map[string]any)["kid"].(string)
	version := kid[strings.LastIndexByte(kid, '/')+1:]
	val := base64.RawURLEncoding.EncodeToString([]byte("cek"))
	for _, p := range []string{"/keys/k2/" + version + "/wrapkey", "/keys/k2//wrapkey", "/keys/k2/wrapkey"} {
		code, m := post(p+"?api-version=2025-07-01", `{"alg":"RSA-OAEP-256","value":"`+val+`"}`)
		if code != 200 || m["kid"] != kid {
			t.Errorf("%s: %d %v", p, code, m)
		}
	}
	if code, m := post("/keys/k2/"+version+"/wrapkey?api-version=2025-07-01", `{"alg":"A256KW","value":"`+val+`"}`); code != 400 {
		t.Errorf("unsupported alg: %d %v", code, m)
	}
	if code, _ := post("/keys/k2/create", `{"kty":"RSA"}`); code != 400 {
		t.Errorf("no api-version: %d", code)
	}
}

func TestCertificateAndHeaders(t *testing.T) {
	v, n, ca := direct(t, 0)
	cert := v.SeedCertificate(t, "web", "www.contoso.example")

	// The certificate's private key is its secret, as Key Vault serves it.
	sc := azure.SecretsClient(t, vaultURL, azure.StaticCredential("tok"), n)
	s, err := sc.GetSecret(t.Context(), "web", "", nil)
	if err != nil {
		t.Fatalf("GetSecret of a certificate: %v", err)
	}
	if *s.ContentType != "application/x-pem-file" || !*s.Managed || s.KID == nil || !strings.Contains(*s.Value, "BEGIN PRIVATE KEY") {
		t.Errorf("certificate secret: contentType %q managed %v kid %v", *s.ContentType, *s.Managed, s.KID)
	}

	hc := (front.Client{RootCAs: ca.Pool(), ServerName: host}).HTTPClient(t, netip.MustParseAddrPort(v.URL().Host))
	req, _ := http.NewRequestWithContext(context.Background(), "GET", vaultURL+"/certificates/web?api-version=7.5", nil)
	req.Header.Set("Authorization", "Bearer tok")
	req.Header.Set("X-Ms-Client-Request-Id", "c-1")
	req.Header.Add("X-Vaultwall-Caller", "oid=1")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var bundle struct {
		ID, KID, SID, X5T, Cer string
	}
	if err := json.Unmarshal(b, &bundle); err != nil {
		t.Fatal(err)
	}
	der, _ := base64.StdEncoding.DecodeString(bundle.Cer)
	parsed, err := x509.ParseCertificate(der)
	if err != nil || !parsed.Equal(cert) {
		t.Errorf("cer is not the certificate: %v", err)
	}
	version := s.ID.Version()
	if bundle.ID != vaultURL+"/certificates/web/"+version || bundle.KID != vaultURL+"/keys/web/"+version || bundle.SID != vaultURL+"/secrets/web/"+version || bundle.X5T == "" {
		t.Errorf("bundle ids %+v", bundle)
	}
	for k, want := range map[string]string{
		"Content-Type": "application/json; charset=utf-8", "X-Ms-Client-Request-Id": "c-1",
		"X-Ms-Keyvault-Region": "westeurope", "Cache-Control": "no-cache",
	} {
		if resp.Header.Get(k) != want {
			t.Errorf("%s: %q, want %q", k, resp.Header.Get(k), want)
		}
	}
	last := v.Requests()[len(v.Requests())-1]
	if last.Header.Get("X-Vaultwall-Caller") != "oid=1" || last.Host != host || last.RequestURI != "/certificates/web?api-version=7.5" {
		t.Errorf("recorded request %+v", last)
	}
}
