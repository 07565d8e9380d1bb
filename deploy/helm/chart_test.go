package helm_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	securityv1beta1 "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/vaultwall/vaultwall/config"
)

const (
	chartDir  = "vaultwall"
	release   = "vaultwall"
	namespace = "vaultwall"
)

// decoder decodes every kind the chart may render, strictly: an unknown or
// duplicated field is an error.
var decoder = func() runtime.Decoder {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme,
		networkingv1.AddToScheme, securityv1.AddToScheme, monitoringv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer()
}()

// rendered is what one `helm template` gives, decoded.
type rendered struct {
	notes       string
	accounts    []*corev1.ServiceAccount
	configMaps  []*corev1.ConfigMap
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	pdbs        []*policyv1.PodDisruptionBudget
	netpols     []*networkingv1.NetworkPolicy
	monitors    []*monitoringv1.ServiceMonitor
	rules       []*monitoringv1.PrometheusRule
	authzPols   []*securityv1.AuthorizationPolicy
	peerAuths   []*securityv1.PeerAuthentication
}

// render loads the chart and renders it as `helm install` would, with the
// values file (if any) over the chart's values.
func render(t *testing.T, valuesFile string) *rendered {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	vals := chartutil.Values{}
	if valuesFile != "" {
		if vals, err = chartutil.ReadValuesFile(valuesFile); err != nil {
			t.Fatal(err)
		}
	}
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: release, Namespace: namespace, Revision: 1, IsInstall: true},
		chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	out, err := engine.Render(ch, rv)
	if err != nil {
		t.Fatal(err)
	}
	r := &rendered{}
	for name, text := range out {
		switch {
		case strings.HasSuffix(name, "NOTES.txt"):
			r.notes = text
			continue
		case path.Ext(name) != ".yaml":
			continue
		}
		reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(text)))
		for i := 0; ; i++ {
			doc, err := reader.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(bytes.TrimSpace(stripComments(doc))) == 0 {
				continue
			}
			r.decode(t, fmt.Sprintf("%s[%d]", name, i), doc)
		}
	}
	return r
}

func stripComments(doc []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

func (r *rendered) decode(t *testing.T, where string, doc []byte) {
	t.Helper()
	obj, gvk, err := decoder.Decode(doc, nil, nil)
	if err != nil {
		t.Errorf("%s: %v\n%s", where, err, doc)
		return
	}
	if m, ok := obj.(metav1.Object); ok && m.GetNamespace() == "" {
		t.Errorf("%s: %s %s has no namespace", where, gvk.Kind, m.GetName())
	}
	switch o := obj.(type) {
	case *corev1.ServiceAccount:
		r.accounts = append(r.accounts, o)
	case *corev1.ConfigMap:
		r.configMaps = append(r.configMaps, o)
	case *appsv1.Deployment:
		r.deployments = append(r.deployments, o)
	case *corev1.Service:
		r.services = append(r.services, o)
	case *policyv1.PodDisruptionBudget:
		r.pdbs = append(r.pdbs, o)
	case *networkingv1.NetworkPolicy:
		r.netpols = append(r.netpols, o)
	case *monitoringv1.ServiceMonitor:
		r.monitors = append(r.monitors, o)
	case *monitoringv1.PrometheusRule:
		r.rules = append(r.rules, o)
	case *securityv1.AuthorizationPolicy:
		// Istio's generated JSON decoding ignores unknown fields: the spec
		// again with protojson, which refuses them.
		strictSpec(t, where, doc, &securityv1beta1.AuthorizationPolicy{})
		r.authzPols = append(r.authzPols, o)
	case *securityv1.PeerAuthentication:
		strictSpec(t, where, doc, &securityv1beta1.PeerAuthentication{})
		r.peerAuths = append(r.peerAuths, o)
	default:
		t.Errorf("%s: unexpected kind %s", where, gvk)
	}
}

func strictSpec(t *testing.T, where string, doc []byte, m proto.Message) {
	t.Helper()
	var obj struct {
		Spec json.RawMessage `json:"spec"`
	}
	if err := yaml.Unmarshal(doc, &obj); err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	if err := protojson.Unmarshal(obj.Spec, m); err != nil {
		t.Errorf("%s: spec: %v", where, err)
	}
}

// chartImage is repository:appVersion, what make image tags.
func chartImage(t *testing.T) string {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := ch.Values["image"].(map[string]any)["repository"].(string)
	return repo + ":" + ch.Metadata.AppVersion
}

// TestChartDefaults renders the default values: the core objects only, and
// they fit together.
func TestChartDefaults(t *testing.T) {
	r := render(t, "")
	if len(r.monitors)+len(r.rules)+len(r.authzPols)+len(r.peerAuths) != 0 {
		t.Errorf("optional objects rendered by default: %d ServiceMonitor, %d PrometheusRule, %d AuthorizationPolicy, %d PeerAuthentication",
			len(r.monitors), len(r.rules), len(r.authzPols), len(r.peerAuths))
	}
	checkCore(t, r)
	if strings.Contains(r.notes, "meshConfig") {
		t.Error("NOTES print the Istio provider with istio off")
	}
}

// TestChartFullValues renders with every option on.
func TestChartFullValues(t *testing.T) {
	r := render(t, "testdata/full-values.yaml")
	checkCore(t, r)
	d := r.deployments[0]
	if *d.Spec.Replicas != 3 || d.Spec.Template.Annotations["example.com/team"] != "security" {
		t.Errorf("values not applied: replicas %d, annotations %v", *d.Spec.Replicas, d.Spec.Template.Annotations)
	}
	if d.Spec.Template.Annotations["proxy.istio.io/config"] == "" {
		t.Error("istio on, but no holdApplicationUntilProxyStarts")
	}

	// The operator policy: in the ConfigMap, mounted under policy/, named
	// by policy.dir, and valid Rego.
	cm := r.configMaps[0]
	cfg := vaultConfig(t, cm)
	if cfg.Policy.Dir != "/etc/vaultwall/policy" || cfg.Vault.Name != "fabrikam-vault" || !cfg.Audit.Enabled {
		t.Errorf("vault.yaml: policy.dir %q, vault %q, audit %v", cfg.Policy.Dir, cfg.Vault.Name, cfg.Audit.Enabled)
	}
	rego := cm.Data["policy-operator.rego"]
	if _, err := ast.ParseModule("operator.rego", rego); err != nil || rego == "" {
		t.Errorf("policy-operator.rego: %v", err)
	}
	if !slices.ContainsFunc(volume(t, d, "config").ConfigMap.Items, func(k corev1.KeyToPath) bool {
		return k.Key == "policy-operator.rego" && k.Path == "policy/operator.rego"
	}) {
		t.Error("the operator policy is not mounted at policy/operator.rego")
	}

	// Prometheus Operator.
	svc := r.services[0]
	if len(r.monitors) != 1 || r.monitors[0].Labels["release"] != "kube-prometheus-stack" {
		t.Fatalf("ServiceMonitor: %d", len(r.monitors))
	}
	sm := r.monitors[0]
	if !selects(sm.Spec.Selector.MatchLabels, svc.Labels) || len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Path != "/metrics" ||
		!slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == sm.Spec.Endpoints[0].Port }) {
		t.Errorf("ServiceMonitor does not scrape the Service's metrics port: %+v", sm.Spec)
	}
	if len(r.rules) != 1 {
		t.Fatalf("PrometheusRule: %d", len(r.rules))
	}
	var alerts []string
	for _, g := range r.rules[0].Spec.Groups {
		for _, rule := range g.Rules {
			alerts = append(alerts, rule.Alert)
		}
	}
	if !slices.Contains(alerts, "VaultwallFailClosedRefusals") || !slices.Contains(alerts, "VaultwallReloadFailed") {
		t.Errorf("PrometheusRule alerts %v", alerts)
	}

	// Istio: a CUSTOM policy on the vault's pods naming the provider the
	// notes ask to add to meshConfig, which points at this Service.
	if len(r.authzPols) != 1 || len(r.peerAuths) != 1 {
		t.Fatalf("%d AuthorizationPolicy, %d PeerAuthentication", len(r.authzPols), len(r.peerAuths))
	}
	ap := r.authzPols[0]
	if ap.Namespace != "secrets" || ap.Spec.Action != securityv1beta1.AuthorizationPolicy_CUSTOM ||
		ap.Spec.GetSelector().GetMatchLabels()["app.kubernetes.io/name"] != "vault" {
		t.Errorf("AuthorizationPolicy %s/%s: action %v selector %v", ap.Namespace, ap.Name, ap.Spec.Action, ap.Spec.GetSelector())
	}
	if ops := ap.Spec.Rules[0].GetTo()[0].GetOperation(); !slices.Equal(ops.GetNotPaths(), []string{"/healthz"}) {
		t.Errorf("excludePaths not applied: %v", ops)
	}
	if pa := r.peerAuths[0]; pa.Namespace != namespace || pa.Spec.GetMtls().GetMode() != securityv1beta1.PeerAuthentication_MutualTLS_STRICT ||
		!selects(pa.Spec.GetSelector().GetMatchLabels(), d.Spec.Template.Labels) {
		t.Errorf("PeerAuthentication %s/%s: %v", pa.Namespace, pa.Name, &pa.Spec)
	}
	mesh := meshFromNotes(t, r.notes)
	if len(mesh.ExtensionProviders) != 1 {
		t.Fatalf("meshConfig providers: %v", mesh.ExtensionProviders)
	}
	p := mesh.ExtensionProviders[0]
	ext := p.GetEnvoyExtAuthzGrpc()
	if p.Name != ap.Spec.GetProvider().GetName() || ext == nil {
		t.Fatalf("provider %q (%T) is not the AuthorizationPolicy's %q", p.Name, p.Provider, ap.Spec.GetProvider().GetName())
	}
	if want := svc.Name + "." + svc.Namespace + ".svc.cluster.local"; ext.Service != want || ext.Port != 9191 || ext.FailOpen {
		t.Errorf("provider: service %q port %d failOpen %v, want %q 9191 false", ext.Service, ext.Port, ext.FailOpen, want)
	}
}

// meshFromNotes decodes the meshConfig block the install notes print,
// strictly, into Istio's MeshConfig.
func meshFromNotes(t *testing.T, notes string) *meshv1alpha1.MeshConfig {
	t.Helper()
	m := regexp.MustCompile(`(?s)# meshConfig\n(.*)# end meshConfig`).FindStringSubmatch(notes)
	if m == nil {
		t.Fatalf("the notes print no meshConfig block:\n%s", notes)
	}
	j, err := yaml.YAMLToJSON([]byte(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	mesh := &meshv1alpha1.MeshConfig{}
	if err := protojson.Unmarshal(j, mesh); err != nil {
		t.Fatalf("meshConfig block: %v\n%s", err, m[1])
	}
	return mesh
}

// checkCore checks the objects every install has.
func checkCore(t *testing.T, r *rendered) {
	t.Helper()
	if len(r.deployments) != 1 || len(r.services) != 1 || len(r.configMaps) != 1 || len(r.accounts) != 1 || len(r.pdbs) != 1 || len(r.netpols) != 1 {
		t.Fatalf("want one each of Deployment, Service, ConfigMap, ServiceAccount, PodDisruptionBudget, NetworkPolicy; got %d %d %d %d %d %d",
			len(r.deployments), len(r.services), len(r.configMaps), len(r.accounts), len(r.pdbs), len(r.netpols))
	}
	d, svc, cm := r.deployments[0], r.services[0], r.configMaps[0]
	pod := d.Spec.Template
	if !selects(d.Spec.Selector.MatchLabels, pod.Labels) {
		t.Errorf("the Deployment's selector %v does not select its pods %v", d.Spec.Selector.MatchLabels, pod.Labels)
	}
	if pod.Spec.ServiceAccountName != r.accounts[0].Name {
		t.Errorf("service account %q, rendered %q", pod.Spec.ServiceAccountName, r.accounts[0].Name)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if c.Image != chartImage(t) || c.Image != "ghcr.io/vaultwall/vaultwall:0.1.0" {
		t.Errorf("image %q, want the chart's %q (make image's tag)", c.Image, chartImage(t))
	}
	if len(c.Command) != 0 || !slices.Equal(c.Args, []string{"--config", "/etc/vaultwall/vault.yaml"}) {
		t.Errorf("command %q args %q: the image's entrypoint is `vaultwall serve`", c.Command, c.Args)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["grpc"] != 9191 || ports["http"] != 9090 {
		t.Errorf("container ports %v", ports)
	}
	for name, pr := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		want := "/healthz"
		if name == "readiness" {
			want = "/readyz"
		}
		if pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Path != want || pr.HTTPGet.Port.StrVal != "http" {
			t.Errorf("%s probe %+v, want GET %s on port http", name, pr, want)
		}
	}
	sc := pod.Spec.SecurityContext
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 65532 || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("pod security context %+v: want non-root 65532 (the image's user)", sc)
	}
	if csc := c.SecurityContext; csc == nil || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
		t.Error("the root file system is not read-only")
	}

	// The ConfigMap's vault.yaml is a valid configuration serving on the
	// container's ports, mounted whole at /etc/vaultwall.
	cfg := vaultConfig(t, cm)
	if cfg.Server.GRPCAddr != ":9191" || cfg.Server.HTTPAddr != ":9090" {
		t.Errorf("vault.yaml server %q %q, want :9191 :9090", cfg.Server.GRPCAddr, cfg.Server.HTTPAddr)
	}
	v := volume(t, d, "config")
	if v.ConfigMap == nil || v.ConfigMap.Name != cm.Name {
		t.Errorf("config volume %+v, want ConfigMap %s", v, cm.Name)
	}
	if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.Name == "config" && m.MountPath == "/etc/vaultwall" && m.SubPath == ""
	}) {
		t.Error("the config volume is not mounted whole at /etc/vaultwall (a subPath mount never sees updates)")
	}

	// The Service reaches the pods' named ports.
	if !selects(svc.Spec.Selector, pod.Labels) {
		t.Errorf("the Service's selector %v does not select the pods %v", svc.Spec.Selector, pod.Labels)
	}
	for _, p := range svc.Spec.Ports {
		if _, ok := ports[p.TargetPort.StrVal]; !ok {
			t.Errorf("Service port %s targets %q, not a container port", p.Name, p.TargetPort.StrVal)
		}
	}

	// The PodDisruptionBudget covers the pods.
	if pdb := r.pdbs[0]; !selects(pdb.Spec.Selector.MatchLabels, pod.Labels) || pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 1 {
		t.Errorf("PodDisruptionBudget %+v", pdb.Spec)
	}

	// The NetworkPolicy: ingress only, to these pods; 9191 only from the
	// listed peers, never from everyone.
	np := r.netpols[0]
	if !selects(np.Spec.PodSelector.MatchLabels, pod.Labels) || !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Errorf("NetworkPolicy selects %v, types %v", np.Spec.PodSelector.MatchLabels, np.Spec.PolicyTypes)
	}
	grpcRules := 0
	for _, rule := range np.Spec.Ingress {
		for _, p := range rule.Ports {
			if p.Port != nil && p.Port.IntValue() == 9191 {
				grpcRules++
				if len(rule.From) == 0 {
					t.Error("NetworkPolicy lets everyone reach 9191")
				}
			}
		}
		if len(rule.Ports) == 0 {
			t.Error("a NetworkPolicy rule opens every port")
		}
	}
	if grpcRules != 1 {
		t.Errorf("%d NetworkPolicy rules for 9191, want 1", grpcRules)
	}
}

func vaultConfig(t *testing.T, cm *corev1.ConfigMap) *config.Config {
	t.Helper()
	cfg, err := config.Parse("configmap:vault.yaml", []byte(cm.Data["vault.yaml"]))
	if err != nil {
		t.Fatalf("the ConfigMap's vault.yaml does not validate: %v\n%s", err, cm.Data["vault.yaml"])
	}
	return cfg
}

func volume(t *testing.T, d *appsv1.Deployment, name string) corev1.Volume {
	t.Helper()
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no volume %q", name)
	return corev1.Volume{}
}

func selects(selector, lbls map[string]string) bool {
	return len(selector) > 0 && labels.SelectorFromSet(selector).Matches(labels.Set(lbls))
}

// TestChartAlertsMatchMonitoring: the chart's copy of the alerting rules is
// deploy/monitoring's (a chart cannot read files outside itself).
func TestChartAlertsMatchMonitoring(t *testing.T) {
	a, err := os.ReadFile("../monitoring/vaultwall-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("vaultwall/files/vaultwall-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("deploy/helm/vaultwall/files/vaultwall-alerts.yaml differs from deploy/monitoring/vaultwall-alerts.yaml: copy it")
	}
}
