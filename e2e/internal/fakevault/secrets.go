package fakevault

import (
	"net/http"
	"time"
)

type secret struct {
	name, version string
	value         string
	contentType   string
	attrs         attributes
	tags          map[string]string
	created       time.Time
	managed       bool // backs a certificate; its key shares name and version
	deletedAt     time.Time
}

func (s *secret) id(base string) string { return base + "/secrets/" + s.name + "/" + s.version }

// bundle is a SecretBundle.
func (s *secret) bundle(base string) map[string]any {
	m := s.item(base)
	m["id"] = s.id(base)
	m["value"] = s.value
	if s.managed {
		m["kid"] = base + "/keys/" + s.name + "/" + s.version
	}
	return m
}

// item is a SecretItem: the id without version, no value.
func (s *secret) item(base string) map[string]any {
	m := map[string]any{"id": base + "/secrets/" + s.name, "attributes": s.attrs.json(s.created)}
	if s.contentType != "" {
		m["contentType"] = s.contentType
	}
	if len(s.tags) > 0 {
		m["tags"] = s.tags
	}
	if s.managed {
		m["managed"] = true
	}
	return m
}

func (s *secret) deleted(base string) map[string]any {
	m := s.bundle(base)
	delete(m, "value")
	m["recoveryId"] = base + "/deletedsecrets/" + s.name
	m["deletedDate"], m["scheduledPurgeDate"] = deletedDates(s.deletedAt)
	return m
}

// SetSecret stores a secret version without going through HTTP (test
// seeding) and returns its version.
func (v *Vault) SetSecret(name, value string) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := &secret{name: name, version: newVersion(), value: value, created: time.Now()}
	v.secrets[name] = append(v.secrets[name], s)
	return s.version
}

// Secret is the latest value of a secret and whether it exists.
func (v *Vault) Secret(name string) (string, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	vs := v.secrets[name]
	if len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1].value, true
}

// findSecret is the named version, or the latest for "".
func (v *Vault) findSecret(name, version string) *secret {
	vs := v.secrets[name]
	if len(vs) == 0 {
		return nil
	}
	if version == "" {
		return vs[len(vs)-1]
	}
	for _, s := range vs {
		if s.version == version {
			return s
		}
	}
	return nil
}

func (v *Vault) routeSecrets(c *call, seg []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	m := c.r.Method
	switch {
	case (len(seg) == 0 || len(seg) == 1 && seg[0] == "") && m == http.MethodGet: // GET /secrets
		var items []map[string]any
		for _, vs := range v.secrets {
			items = append(items, vs[len(vs)-1].item(c.base))
		}
		c.page(items)
	case len(seg) == 0:
		c.badRoute()
	case len(seg) == 1 && m == http.MethodPut:
		v.setSecret(c, seg[0])
	case len(seg) == 1 && m == http.MethodDelete:
		s := v.findSecret(seg[0], "")
		if s == nil {
			c.notFound("secret", seg[0])
			return
		}
		delete(v.secrets, seg[0])
		s.deletedAt = time.Now()
		v.deletedSecrets[seg[0]] = s
		c.ok(s.deleted(c.base))
	case len(seg) == 2 && seg[1] == "versions" && m == http.MethodGet:
		var items []map[string]any
		for _, s := range v.secrets[seg[0]] {
			it := s.item(c.base)
			it["id"] = s.id(c.base)
			items = append(items, it)
		}
		if items == nil {
			c.notFound("secret", seg[0])
			return
		}
		c.page(items)
	case (len(seg) == 1 || len(seg) == 2) && m == http.MethodGet: // /secrets/{n}[/{v}], {v} may be ""
		version := ""
		if len(seg) == 2 {
			version = seg[1]
		}
		s := v.findSecret(seg[0], version)
		if s == nil {
			c.notFound("secret", seg[0])
			return
		}
		c.ok(s.bundle(c.base))
	default:
		c.badRoute()
	}
}

func (v *Vault) setSecret(c *call, name string) {
	if !objectName.MatchString(name) {
		c.badParameter("The secret name is invalid: it must match ^[0-9a-zA-Z-]+$ and be 1-127 characters long.")
		return
	}
	var body struct {
		Value       *string           `json:"value"`
		ContentType string            `json:"contentType"`
		Attributes  attributes        `json:"attributes"`
		Tags        map[string]string `json:"tags"`
	}
	if !c.decode(&body) {
		return
	}
	if body.Value == nil {
		c.badParameter("The parameter 'value' is required.")
		return
	}
	s := &secret{name: name, version: newVersion(), value: *body.Value, contentType: body.ContentType,
		attrs: body.Attributes, tags: body.Tags, created: time.Now()}
	v.secrets[name] = append(v.secrets[name], s)
	c.ok(s.bundle(c.base))
}

func (v *Vault) routeDeletedSecrets(c *call, seg []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(seg) != 1 {
		c.badRoute()
		return
	}
	s := v.deletedSecrets[seg[0]]
	if s == nil {
		c.notFound("secret", seg[0])
		return
	}
	switch c.r.Method {
	case http.MethodGet:
		c.ok(s.deleted(c.base))
	case http.MethodDelete: // purge
		delete(v.deletedSecrets, seg[0])
		c.w.WriteHeader(http.StatusNoContent)
	default:
		c.badRoute()
	}
}
