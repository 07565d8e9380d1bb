package config

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// ControlPlane configures vaultwall's management API: a gRPC service on its
// own listener through which the vault's network rules, access policies and
// role assignments are changed, persisted in a store and applied to every
// replica. It is off unless enabled. The firewall never applies to it; its
// callers are authorized by the control-plane policy.
//
// The section is read when vaultwall starts: changing it needs a restart.
type ControlPlane struct {
	Enabled bool `json:"enabled,omitempty"`
	// ListenAddr is the admin listener (default 127.0.0.1:9292).
	ListenAddr string `json:"listenAddr,omitempty"`
	// TLS secures the admin listener. clientCAFile asks for client
	// certificates (optional, so token callers need none) and verifies them:
	// a certificate whose identity matches adminPrincipals is an admin.
	TLS ServerTLS `json:"tls"`
	// Audiences are the token audiences of the management API. Tokens come
	// from identity.issuers, as on the data plane, but must carry one of
	// these audiences (never a data-plane audience). Empty: no token is
	// accepted and only admin certificates can call.
	Audiences []string `json:"audiences,omitempty"`
	// AdminPrincipals match admin client certificates, written like
	// trustedServices principals: spiffe://td/path, spiffe://td/path/*,
	// dns:name, subject:CN=….
	AdminPrincipals []string `json:"adminPrincipals,omitempty"`
	// PolicyDir, when set, holds .rego files (package vaultwall.control)
	// that replace the shipped control-plane policy.
	PolicyDir string `json:"policyDir,omitempty"`
	// Store is where the vault's changed properties are kept.
	Store Store `json:"store"`
}

// Store selects the control plane's storage.
type Store struct {
	// Type is file (default: one node) or etcd (a fleet).
	Type string `json:"type,omitempty"`
	// Path is the file store's file (default: vaultwall-state.json beside
	// the configuration file; its directory must be writable). With
	// vaults.dir each vault has its own file beside it, the vault's name
	// (lower case) before the extension: vaultwall-state.<vault>.json.
	Path string `json:"path,omitempty"`
	// Endpoints are the etcd client URLs.
	Endpoints []string `json:"endpoints,omitempty"`
	// KeyPrefix prefixes the etcd key <prefix>state (default
	// /vaultwall/<vault name>/). With vaults.dir each vault has its own key,
	// <prefix><vault name, lower case>/state (default prefix /vaultwall/).
	KeyPrefix string `json:"keyPrefix,omitempty"`
	// DialTimeout bounds connecting to etcd (default 5s).
	DialTimeout Duration `json:"dialTimeout,omitempty"`
	// TLS secures the connection to etcd.
	TLS ClientTLS `json:"tls"`
}

// ClientTLS secures an outgoing connection.
type ClientTLS struct {
	CAFile   string `json:"caFile,omitempty"`
	CertFile string `json:"certFile,omitempty"`
	KeyFile  string `json:"keyFile,omitempty"`
}

// Enabled reports whether any TLS setting is made.
func (t ClientTLS) Enabled() bool { return t.CAFile != "" || t.CertFile != "" }

// Control-plane defaults.
const (
	DefaultControlPlaneAddr = "127.0.0.1:9292"
	DefaultStateFile        = "vaultwall-state.json"
	StoreFile               = "file"
	StoreEtcd               = "etcd"
)

func (c *Config) resolveControlPlanePaths(abs func(*string)) {
	cp := &c.ControlPlane
	abs(&cp.TLS.CertFile)
	abs(&cp.TLS.KeyFile)
	abs(&cp.TLS.ClientCAFile)
	abs(&cp.PolicyDir)
	abs(&cp.Store.TLS.CAFile)
	abs(&cp.Store.TLS.CertFile)
	abs(&cp.Store.TLS.KeyFile)
	if cp.Store.Path == "" && (cp.Store.Type == "" || cp.Store.Type == StoreFile) && cp.Enabled {
		cp.Store.Path = DefaultStateFile
	}
	abs(&cp.Store.Path)
}

func (c *Config) controlPlaneDefaults() {
	cp := &c.ControlPlane
	if !cp.Enabled {
		return
	}
	if cp.ListenAddr == "" {
		cp.ListenAddr = DefaultControlPlaneAddr
	}
	if cp.Store.Type == "" {
		cp.Store.Type = StoreFile
	}
	if cp.Store.KeyPrefix == "" {
		if c.Vaults.Dir != "" {
			cp.Store.KeyPrefix = "/vaultwall/" // each vault's key is <prefix><vault name, lower case>/state
		} else {
			cp.Store.KeyPrefix = "/vaultwall/" + c.Vault.Name + "/"
		}
	}
	if cp.Store.DialTimeout == 0 {
		cp.Store.DialTimeout = Duration(5 * time.Second)
	}
}

func (c *Config) validateControlPlane(e *errs) {
	cp := &c.ControlPlane
	if !cp.Enabled {
		return
	}
	const base = "controlPlane"
	if _, _, err := net.SplitHostPort(cp.ListenAddr); err != nil {
		e.Add(base+".listenAddr", ErrInvalidValue, "%q: want host:port", cp.ListenAddr)
	}
	t := cp.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		e.Add(base+".tls", ErrConflict, "certFile and keyFile go together")
	}
	if t.ClientCAFile != "" && t.CertFile == "" {
		e.Add(base+".tls.clientCAFile", ErrConflict, "client certificates need certFile and keyFile too")
	}
	if len(cp.AdminPrincipals) > 0 && t.ClientCAFile == "" {
		e.Add(base+".adminPrincipals", ErrConflict, "admin certificates are verified against tls.clientCAFile; set it")
	}
	if len(cp.Audiences) == 0 && len(cp.AdminPrincipals) == 0 {
		e.Add(base, ErrRequired, "set audiences (token callers) or adminPrincipals (certificate callers): otherwise no one can call the control plane")
	}
	dataPlane := map[string]bool{}
	for _, is := range c.Identity.Issuers {
		for _, a := range is.Audiences {
			dataPlane[a] = true
		}
	}
	for i, a := range cp.Audiences {
		f := fmt.Sprintf("%s.audiences[%d]", base, i)
		switch {
		case a == "":
			e.Add(f, ErrRequired, "")
		case dataPlane[a]:
			e.Add(f, ErrConflict, "%q is a data-plane audience: a token for the vault must never manage it", a)
		}
	}
	for i, p := range cp.AdminPrincipals {
		if p == "" {
			e.Add(fmt.Sprintf("%s.adminPrincipals[%d]", base, i), ErrRequired, "")
		}
	}
	s := &cp.Store
	switch s.Type {
	case StoreFile:
		if len(s.Endpoints) > 0 {
			e.Add(base+".store.endpoints", ErrConflict, "endpoints are for type: etcd")
		}
	case StoreEtcd:
		if len(s.Endpoints) == 0 {
			e.Add(base+".store.endpoints", ErrRequired, "etcd needs at least one endpoint")
		}
		if s.Path != "" {
			e.Add(base+".store.path", ErrConflict, "path is for type: file")
		}
		if !strings.HasPrefix(s.KeyPrefix, "/") {
			e.Add(base+".store.keyPrefix", ErrInvalidValue, "%q: a key prefix starts with /", s.KeyPrefix)
		}
		if (s.TLS.CertFile == "") != (s.TLS.KeyFile == "") {
			e.Add(base+".store.tls", ErrConflict, "certFile and keyFile go together")
		}
	default:
		e.Add(base+".store.type", ErrInvalidValue, "%q: want file or etcd", s.Type)
	}
	if s.DialTimeout.D() < 0 {
		e.Add(base+".store.dialTimeout", ErrInvalidValue, "%s: want a positive duration", s.DialTimeout.D())
	}
}
