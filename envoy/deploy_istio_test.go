package envoy_test

// Loading istio/ as `kubectl apply -k` would (kustomize's own build), decoding
// every object strictly with the Kubernetes and Istio API types, and checking
// that the pieces fit: provider names, ports, selectors, probes, the vaultwall
// config and policy in the ConfigMap.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	yamlv3 "go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	securityv1beta1 "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/engine"
)

const (
	istioDir = "istio"
	// istioMultiDir is the multi-vault overlay on istioDir (a sibling: a
	// kustomize base may not contain its overlay).
	istioMultiDir = "istio-multi-vault"
	// meshDir holds the meshConfig overlays, which are not kustomize
	// resources (they change the Istio installation).
	meshDir = "mesh"

	vaultwallContainer = "vaultwall"
	configKey          = "vault.yaml"
	clusterDomain      = "svc.cluster.local"
)

// k8sDecoder decodes the kinds istio/ may hold, strictly: an unknown or
// duplicated field is an error.
var k8sDecoder = func() runtime.Decoder {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, securityv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer()
}()

// istioSet is what istio/ deploys.
type istioSet struct {
	namespaces  []*corev1.Namespace
	accounts    []*corev1.ServiceAccount
	configMaps  []*corev1.ConfigMap
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	authzPols   []*securityv1.AuthorizationPolicy
	peerAuths   []*securityv1.PeerAuthentication
	// providers are the meshConfig entries, by file.
	meshes map[string]*meshv1alpha1.MeshConfig
}

// istioKustomizations are the kustomizations the tests build and check:
// the base and the multi-vault overlay on it.
var istioKustomizations = []string{istioDir, istioMultiDir}

// checkIstio loads istio/ and istio-multi-vault/ (with files replaced by
// over, keyed by their path below envoy/, e.g. istio/configmap.yaml),
// builds each kustomization with kustomize and checks what it deploys; the
// error joins every problem found, the overlay's prefixed with its
// directory.
func checkIstio(over map[string][]byte) error {
	tree := map[string][]byte{}
	for _, dir := range istioKustomizations {
		files, err := readTree(dir)
		if err != nil {
			return err
		}
		for name, data := range files {
			tree[dir+"/"+name] = data
		}
	}
	for name, data := range over {
		if _, ok := tree[name]; !ok {
			return fmt.Errorf("%s: no such file in %v", name, istioKustomizations)
		}
		tree[name] = data
	}
	f := &findings{}
	for _, name := range slices.Sorted(maps.Keys(tree)) {
		// kustomize's reader lets a repeated key win silently; yaml/v3 refuses.
		if err := noDuplicateKeys(tree[name]); err != nil {
			f.add(strings.TrimPrefix(name, istioDir+"/"), "%v", err)
		}
	}
	files := map[string][]byte{} // istio/, by path below it
	for name, data := range tree {
		if rel, ok := strings.CutPrefix(name, istioDir+"/"); ok {
			files[rel] = data
		}
	}
	meshes := map[string]*meshv1alpha1.MeshConfig{}
	decodeMesh(f, files, &istioSet{meshes: meshes})
	for _, dir := range istioKustomizations {
		kf := &findings{}
		set := &istioSet{meshes: meshes}
		built := buildKustomization(kf, tree, dir)
		for i, doc := range built {
			decodeObject(kf, fmt.Sprintf("kustomize build[%d]", i), doc, set)
		}
		checkIstioSet(kf, set)
		for _, err := range kf.errs {
			if dir != istioDir {
				err = fmt.Errorf("%s/: %w", dir, err)
			}
			f.errs = append(f.errs, err)
		}
	}
	return f.err()
}

// readTree reads every file below dir, keyed by slash path relative to it.
func readTree(dir string) (map[string][]byte, error) {
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = data
		return nil
	})
	return files, err
}

func noDuplicateKeys(data []byte) error {
	dec := yamlv3.NewDecoder(bytes.NewReader(data))
	for {
		var v any
		err := dec.Decode(&v)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// buildKustomization checks dir's kustomization.yaml and runs kustomize's
// own build on an in-memory copy of tree (files by path below envoy/); it
// returns the objects, one YAML document each, as `kubectl apply -k` would
// send them. The base must list every manifest of its directory as a
// resource; an overlay must name every file of its directory (resources,
// patches, generator files), so no vault's file is left behind.
func buildKustomization(f *findings, tree map[string][]byte, dir string) [][]byte {
	const kfile = "kustomization.yaml"
	var k kustypes.Kustomization
	if err := yaml.UnmarshalStrict(tree[dir+"/"+kfile], &k); err != nil {
		f.add(kfile, "%v", err)
		return nil
	}
	var manifests []string
	for name := range tree {
		rel, ok := strings.CutPrefix(name, dir+"/")
		if !ok || rel == kfile {
			continue
		}
		if dir == istioDir && path.Dir(rel) == "." && strings.HasSuffix(rel, ".yaml") {
			manifests = append(manifests, rel)
		}
		if dir != istioDir {
			manifests = append(manifests, rel)
		}
	}
	listed := slices.Clone(k.Resources)
	if dir != istioDir {
		listed = nil
		for _, r := range k.Resources {
			if !strings.HasPrefix(r, "../") && r != ".." {
				listed = append(listed, r)
			}
		}
		for _, p := range k.Patches {
			if p.Path != "" {
				listed = append(listed, p.Path)
			}
		}
		for _, g := range k.ConfigMapGenerator {
			for _, src := range g.FileSources {
				_, file, ok := strings.Cut(src, "=")
				if !ok {
					file = src
				}
				listed = append(listed, file)
			}
		}
	}
	slices.Sort(manifests)
	slices.Sort(listed)
	if !slices.Equal(manifests, listed) {
		if dir == istioDir {
			f.add(kfile, "resources %v, want every manifest of %s/: %v", listed, dir, manifests)
		} else {
			f.add(kfile, "names %v, want every file of %s/: %v", listed, dir, manifests)
		}
	}

	mem := filesys.MakeFsInMemory()
	for name, data := range tree {
		if err := mem.WriteFile("/"+name, data); err != nil {
			f.add(name, "%v", err)
			return nil
		}
	}
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, "/"+dir)
	if err != nil {
		f.add(kfile, "kustomize build: %v", err)
		return nil
	}
	out, err := rm.AsYaml()
	if err != nil {
		f.add(kfile, "kustomize build: %v", err)
		return nil
	}
	var docs [][]byte
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	for {
		doc, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.add(kfile, "kustomize output: %v", err)
			break
		}
		if len(bytes.TrimSpace(doc)) > 0 {
			docs = append(docs, doc)
		}
	}
	return docs
}

// decodeObject decodes one object with the Kubernetes and Istio types.
// Istio's generated JSON decoding ignores unknown fields, so an Istio spec is
// decoded a second time with protojson, where an unknown field is an error.
func decodeObject(f *findings, where string, doc []byte, set *istioSet) {
	obj, gvk, err := k8sDecoder.Decode(doc, nil, nil)
	if err != nil {
		f.add(where, "%v", err)
		return
	}
	if m, ok := obj.(metav1.Object); ok {
		where = fmt.Sprintf("%s %s/%s", gvk.Kind, m.GetNamespace(), m.GetName())
	}
	switch o := obj.(type) {
	case *corev1.Namespace:
		set.namespaces = append(set.namespaces, o)
	case *corev1.ServiceAccount:
		set.accounts = append(set.accounts, o)
	case *corev1.ConfigMap:
		set.configMaps = append(set.configMaps, o)
	case *appsv1.Deployment:
		set.deployments = append(set.deployments, o)
	case *corev1.Service:
		set.services = append(set.services, o)
	case *securityv1.AuthorizationPolicy:
		if strictSpec(f, where, doc, &securityv1beta1.AuthorizationPolicy{}) {
			set.authzPols = append(set.authzPols, o)
		}
	case *securityv1.PeerAuthentication:
		if strictSpec(f, where, doc, &securityv1beta1.PeerAuthentication{}) {
			set.peerAuths = append(set.peerAuths, o)
		}
	default:
		f.add(where, "unexpected kind %s", gvk)
	}
}

// strictSpec decodes the object's spec into m with protojson, which refuses
// unknown fields.
func strictSpec(f *findings, where string, doc []byte, m proto.Message) bool {
	var obj struct {
		Spec json.RawMessage `json:"spec"`
	}
	if err := yaml.Unmarshal(doc, &obj); err != nil {
		f.add(where, "%v", err)
		return false
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(obj.Spec, m); err != nil {
		f.add(where+" spec", "%v", err)
		return false
	}
	return true
}

// decodeMesh decodes the meshConfig overlays: the IstioOperator and the
// istiod Helm values. Their envelopes are decoded strictly (the overlay must
// hold meshConfig only), and meshConfig as Istio's MeshConfig proto.
func decodeMesh(f *findings, files map[string][]byte, set *istioSet) {
	type operator struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   metav1.ObjectMeta `json:"metadata"`
		Spec       struct {
			MeshConfig json.RawMessage `json:"meshConfig"`
		} `json:"spec"`
	}
	type helmValues struct {
		MeshConfig json.RawMessage `json:"meshConfig"`
	}
	opFile, helmFile := meshDir+"/istiooperator.yaml", meshDir+"/istiod-values.yaml"
	var op operator
	if err := yaml.UnmarshalStrict(files[opFile], &op); err != nil {
		f.add(opFile, "%v", err)
	} else if op.APIVersion != "install.istio.io/v1alpha1" || op.Kind != "IstioOperator" {
		f.add(opFile, "%s %s, want install.istio.io/v1alpha1 IstioOperator", op.APIVersion, op.Kind)
	} else {
		set.meshes[opFile] = strictMesh(f, opFile, op.Spec.MeshConfig)
	}
	var hv helmValues
	if err := yaml.UnmarshalStrict(files[helmFile], &hv); err != nil {
		f.add(helmFile, "%v", err)
	} else {
		set.meshes[helmFile] = strictMesh(f, helmFile, hv.MeshConfig)
	}
	for name := range files {
		if strings.HasPrefix(name, meshDir+"/") && name != opFile && name != helmFile {
			f.add(name, "unexpected file: the tests know %s and %s", opFile, helmFile)
		}
	}
}

func strictMesh(f *findings, where string, raw json.RawMessage) *meshv1alpha1.MeshConfig {
	if len(raw) == 0 {
		f.add(where, "no meshConfig")
		return nil
	}
	m := &meshv1alpha1.MeshConfig{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(raw, m); err != nil {
		f.add(where+" meshConfig", "%v", err)
		return nil
	}
	return m
}

// checkIstioSet checks that the objects fit together and keep vaultwall's
// invariants.
func checkIstioSet(f *findings, s *istioSet) {
	dep := one(f, "Deployment", s.deployments)
	svc := one(f, "Service", s.services)
	cm := one(f, "ConfigMap", s.configMaps)
	sa := one(f, "ServiceAccount", s.accounts)
	ap := one(f, "AuthorizationPolicy", s.authzPols)
	if dep == nil || svc == nil || cm == nil || sa == nil || ap == nil {
		return
	}
	ns := dep.Namespace
	podLabels := dep.Spec.Template.Labels
	where := "Deployment " + ns + "/" + dep.Name

	// Selectors.
	if sel := dep.Spec.Selector; sel == nil || len(sel.MatchLabels) == 0 || !subset(sel.MatchLabels, podLabels) {
		f.add(where, "spec.selector does not match the pod template's labels %v", podLabels)
	}
	if len(svc.Spec.Selector) == 0 || !subset(svc.Spec.Selector, podLabels) {
		f.add("Service "+svc.Namespace+"/"+svc.Name, "selector %v does not match vaultwall's pod labels %v", svc.Spec.Selector, podLabels)
	}
	for _, o := range []metav1.Object{svc, cm, sa} {
		if o.GetNamespace() != ns {
			f.add(o.GetName(), "namespace %q, want vaultwall's %q", o.GetNamespace(), ns)
		}
	}
	if dep.Spec.Template.Spec.ServiceAccountName != sa.Name {
		f.add(where, "serviceAccountName %q, want %q", dep.Spec.Template.Spec.ServiceAccountName, sa.Name)
	}
	if !injected(s.namespaces, ns, podLabels) {
		f.add(where, "no sidecar: label namespace %s istio-injection=enabled (or the pod sidecar.istio.io/inject=true)", ns)
	}

	// Istio reads this annotation as a ProxyConfig; a typo there is ignored
	// by the injector, so decode it strictly here.
	if pc, ok := dep.Spec.Template.Annotations["proxy.istio.io/config"]; ok {
		if j, err := yaml.YAMLToJSON([]byte(pc)); err != nil {
			f.add(where, "annotation proxy.istio.io/config: %v", err)
		} else if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(j, &meshv1alpha1.ProxyConfig{}); err != nil {
			f.add(where, "annotation proxy.istio.io/config: %v", err)
		}
	}

	c := container(f, where, dep)
	if c == nil {
		return
	}
	cfg := checkConfigMount(f, where, dep, c, cm)
	// The ports vaultwall listens on: from its config, or, when that did not
	// load, from the container's port names.
	grpcPort := resolvePort(c, intstr.FromString("grpc"), 0)
	httpPort := resolvePort(c, intstr.FromString("http"), 0)
	if cfg != nil {
		grpcPort = addrPort(f, "vault.yaml server.grpcAddr", cfg.Server.GRPCAddr)
		httpPort = addrPort(f, "vault.yaml server.httpAddr", cfg.Server.HTTPAddr)
		if !declares(c, grpcPort) {
			f.add(where, "the container does not declare vaultwall's gRPC port %d", grpcPort)
		}
		if !declares(c, httpPort) {
			f.add(where, "the container does not declare vaultwall's HTTP port %d", httpPort)
		}
	}
	checkProbes(f, where, c, httpPort)
	checkHardening(f, where, dep, c)

	// The Service port the provider calls: gRPC, to vaultwall's gRPC port.
	svcWhere := "Service " + svc.Namespace + "/" + svc.Name
	var grpcSvc *corev1.ServicePort
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if target := resolvePort(c, p.TargetPort, p.Port); grpcPort != 0 && target == grpcPort {
			grpcSvc = p
		}
	}
	switch {
	case grpcSvc == nil:
		f.add(svcWhere, "no port targets vaultwall's gRPC port %d", grpcPort)
	case grpcSvc.AppProtocol == nil || *grpcSvc.AppProtocol != "grpc":
		f.add(svcWhere, "port %d must declare appProtocol: grpc, or Istio may treat it as TCP/HTTP/1.1 and the Check call fails", grpcSvc.Port)
	case !strings.HasPrefix(grpcSvc.Name, "grpc"):
		f.add(svcWhere, "port %d is named %q; name it grpc or grpc-* for Istio releases that select protocols by name", grpcSvc.Port, grpcSvc.Name)
	}

	// The mesh's extension provider: its name is the policy's provider, its
	// address the Service.
	checkProviders(f, s, ap, svc, grpcSvc)

	// The CUSTOM policy and mTLS on the vault; mTLS on vaultwall.
	apWhere := "AuthorizationPolicy " + ap.Namespace + "/" + ap.Name
	spec := &ap.Spec
	if spec.GetAction() != securityv1beta1.AuthorizationPolicy_CUSTOM {
		f.add(apWhere, "action %s, want CUSTOM", spec.GetAction())
	}
	if len(spec.GetRules()) == 0 {
		f.add(apWhere, "no rules: a CUSTOM policy without rules never matches, so vaultwall would never be asked; use rules: [{}]")
	} else if !slices.ContainsFunc(spec.GetRules(), func(r *securityv1beta1.Rule) bool { return proto.Equal(r, &securityv1beta1.Rule{}) }) {
		f.add(apWhere, "no empty rule ({}): every request must go to vaultwall, narrowed rules let the rest through unchecked")
	}
	if len(spec.GetSelector().GetMatchLabels()) == 0 || len(spec.GetTargetRefs()) > 0 || spec.GetTargetRef() != nil {
		f.add(apWhere, "select the vault workload with selector.matchLabels")
	}
	if ap.Namespace == ns {
		f.add(apWhere, "is in vaultwall's namespace; it belongs in the vault's")
	}
	if !strictFor(s.peerAuths, ap.Namespace, spec.GetSelector()) {
		f.add(apWhere, "no PeerAuthentication STRICT covers the vault workload %v in %s: callers could arrive in plaintext, with no principal", spec.GetSelector().GetMatchLabels(), ap.Namespace)
	}
	if !strictFor(s.peerAuths, ns, &typev1beta1.WorkloadSelector{MatchLabels: podLabels}) {
		f.add(where, "no PeerAuthentication STRICT covers vaultwall in %s", ns)
	}
	for _, pa := range s.peerAuths {
		for port, m := range pa.Spec.GetPortLevelMtls() {
			if m.GetMode() != securityv1beta1.PeerAuthentication_MutualTLS_STRICT {
				f.add("PeerAuthentication "+pa.Namespace+"/"+pa.Name, "port %d weakened to %s", port, m.GetMode())
			}
		}
	}
}

func one[T metav1.Object](f *findings, kind string, list []T) T {
	var zero T
	if len(list) != 1 {
		f.add(istioDir, "%d %s objects, want 1", len(list), kind)
		return zero
	}
	return list[0]
}

func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func injected(namespaces []*corev1.Namespace, ns string, podLabels map[string]string) bool {
	if podLabels["sidecar.istio.io/inject"] == "true" {
		return true
	}
	for _, n := range namespaces {
		if n.Name == ns && n.Labels["istio-injection"] == "enabled" && podLabels["sidecar.istio.io/inject"] != "false" {
			return true
		}
	}
	return false
}

func container(f *findings, where string, dep *appsv1.Deployment) *corev1.Container {
	for i := range dep.Spec.Template.Spec.Containers {
		if c := &dep.Spec.Template.Spec.Containers[i]; c.Name == vaultwallContainer {
			return c
		}
	}
	f.add(where, "no container named %q", vaultwallContainer)
	return nil
}

// checkConfigMount follows `serve --config PATH` to the ConfigMap key that
// backs it, parses that config with vaultwall's own loader, and checks the
// policy directory and the settings a mesh needs.
func checkConfigMount(f *findings, where string, dep *appsv1.Deployment, c *corev1.Container, cm *corev1.ConfigMap) *config.Config {
	args := append(slices.Clone(c.Command), c.Args...)
	if len(args) < 2 || args[0] != "vaultwall" || args[1] != "serve" {
		f.add(where, "command+args %q, want vaultwall serve --config FILE", args)
		return nil
	}
	cfgPath := ""
	for i, a := range args {
		if a == "--config" && i+1 < len(args) {
			cfgPath = args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			cfgPath = v
		}
	}
	key, ok := mountedKey(dep, c, cm.Name, cfgPath)
	if !ok {
		f.add(where, "--config %q is not a key of ConfigMap %s mounted in the container", cfgPath, cm.Name)
		return nil
	}
	if key != configKey {
		f.add(where, "--config reads ConfigMap key %q, want %q", key, configKey)
	}
	cfg, err := config.Parse("ConfigMap "+cm.Name+" "+key, []byte(cm.Data[key]))
	if err != nil {
		f.errs = append(f.errs, err)
		return nil
	}
	cmWhere := "ConfigMap " + cm.Name + " " + key
	checkMeshConfig(f, cmWhere, cfg)
	// The operator policy: every .rego key mounted into policy.dir must parse
	// and compile as Rego v1.
	if cfg.Policy.Dir == "" {
		f.add(cmWhere, "policy.dir is empty: the operator policy in the ConfigMap would not be loaded")
	}
	modules := map[string]*ast.Module{}
	for k, src := range cm.Data {
		if !strings.HasSuffix(k, ".rego") {
			continue
		}
		p, ok := mountPathOf(dep, c, cm.Name, k)
		if !ok || path.Dir(p) != path.Clean(cfg.Policy.Dir) {
			f.add(cmWhere, "%s is mounted at %q, not in policy.dir %q", k, p, cfg.Policy.Dir)
		}
		m, err := ast.ParseModuleWithOpts(k, src, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			f.add("ConfigMap "+cm.Name+" "+k, "%v", err)
			continue
		}
		modules[k] = m
	}
	if len(modules) == 0 {
		f.add("ConfigMap "+cm.Name, "no .rego policy")
	}
	if comp := ast.NewCompiler(); len(modules) > 0 {
		if comp.Compile(modules); comp.Failed() {
			f.add("ConfigMap "+cm.Name, "policy: %v", comp.Errors)
		}
	}
	// A key the container does not see is never read (a vault's file left
	// out of the volume's items).
	for _, k := range slices.Sorted(maps.Keys(cm.Data)) {
		if _, ok := mountPathOf(dep, c, cm.Name, k); !ok {
			f.add("ConfigMap "+cm.Name+" "+k, "not mounted in the container: vaultwall never reads it")
		}
	}
	if cfg.Vaults.Dir != "" {
		checkVaults(f, dep, c, cm, cfgPath, cfg)
	}
	return cfg
}

// checkMeshConfig checks the settings a mesh needs in one configuration:
// the main file's, or one vault's composed on it.
func checkMeshConfig(f *findings, where string, cfg *config.Config) {
	if cfg.Server.TLS.Enabled() {
		f.add(where, "server.tls is set: in the mesh the sidecar terminates mTLS and forwards plaintext to vaultwall")
	}
	if cfg.TrustedServices.CAFile != "" {
		f.add(where, "trustedServices.caFile is set: Istio does not send the peer certificate to ext_authz, so no trusted service could ever match")
	}
	if h := cfg.Network.TrustedProxies.Hops; h != 0 {
		f.add(where, "network.trustedProxies.hops %d: sidecar to sidecar there is no proxy hop to believe", h)
	}
	if len(cfg.TrustedServices.Services) == 0 {
		f.add(where, "no trustedServices binding: the example must show a SPIFFE principal")
	}
	for i, ts := range cfg.TrustedServices.Services {
		for j, p := range ts.Principals {
			if !isSPIFFEWorkload(p) {
				f.add(where, "trustedServices.services[%d].principals[%d] %q: in a mesh a principal is spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>", i, j, p)
			}
		}
	}
}

// checkVaults checks a multi-vault configuration (vaults.dir) as the pod
// would load it: every ConfigMap key the container sees is written at its
// path below a temporary root (the main file's absolute paths moved there
// with it), the main file is compiled with engine.CompileSet, as `vaultwall
// config validate` does, and each vault's composed configuration gets the
// mesh checks. The vault files the container sees in vaults.dir must all be
// in force, and there must be two at least (the example's point).
func checkVaults(f *findings, dep *appsv1.Deployment, c *corev1.Container, cm *corev1.ConfigMap, cfgPath string, cfg *config.Config) {
	where := "ConfigMap " + cm.Name + " vaults.dir " + cfg.Vaults.Dir
	root, err := os.MkdirTemp("", "vaultwall-istio-")
	if err != nil {
		f.add(where, "%v", err)
		return
	}
	defer os.RemoveAll(root)
	var mounts []string
	for _, vm := range c.VolumeMounts {
		if v := volume(dep, vm.Name); v != nil && v.ConfigMap != nil && v.ConfigMap.Name == cm.Name && vm.SubPath == "" {
			mounts = append(mounts, path.Clean(vm.MountPath)+"/")
		}
	}
	vaultFiles := 0
	for k, data := range cm.Data {
		p, ok := mountPathOf(dep, c, cm.Name, k)
		if !ok {
			continue
		}
		if dir, file := path.Split(p); path.Clean(dir) == path.Clean(cfg.Vaults.Dir) && !strings.HasPrefix(file, ".") &&
			slices.Contains([]string{".yaml", ".yml", ".json"}, strings.ToLower(path.Ext(file))) {
			vaultFiles++
		}
		for _, m := range mounts {
			data = strings.ReplaceAll(data, m, filepath.ToSlash(root)+m)
		}
		out := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			f.add(where, "%v", err)
			return
		}
		if err := os.WriteFile(out, []byte(data), 0o644); err != nil {
			f.add(where, "%v", err)
			return
		}
	}
	keys := token.NewKeyStore(token.StoreOptions{})
	defer keys.Close()
	b := &engine.Builder{Keys: keys}
	set, err := engine.CompileSet(context.Background(), filepath.Join(root, filepath.FromSlash(cfgPath)), b.Build, nil)
	if err != nil {
		f.add(where, "vaultwall refuses it: %v", err)
		return
	}
	defer set.Close()
	if vaultFiles < 2 || len(set.Runtimes) != vaultFiles {
		f.add(where, "%d vaults in force from %d files the container sees there; want every file, and two at least", len(set.Runtimes), vaultFiles)
	}
	for _, rt := range set.Runtimes {
		checkMeshConfig(f, "vault "+rt.Config.Vault.Name+" ("+filepath.Base(rt.Config.Path)+")", rt.Config)
	}
}

func isSPIFFEWorkload(p string) bool {
	rest, ok := strings.CutPrefix(p, "spiffe://")
	if !ok {
		return false
	}
	parts := strings.Split(rest, "/")
	return len(parts) == 5 && parts[0] != "" && parts[1] == "ns" && parts[2] != "" && parts[3] == "sa" && parts[4] != ""
}

// mountedKey says which key of ConfigMap cmName the container sees at file.
func mountedKey(dep *appsv1.Deployment, c *corev1.Container, cmName, file string) (string, bool) {
	for _, vm := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(path.Clean(file), path.Clean(vm.MountPath)+"/")
		if !ok {
			continue
		}
		vol := volume(dep, vm.Name)
		if vol == nil || vol.ConfigMap == nil || vol.ConfigMap.Name != cmName {
			continue
		}
		if vm.SubPath != "" {
			continue
		}
		if len(vol.ConfigMap.Items) == 0 {
			return rel, !strings.Contains(rel, "/")
		}
		for _, it := range vol.ConfigMap.Items {
			if path.Clean(it.Path) == rel {
				return it.Key, true
			}
		}
	}
	return "", false
}

// mountPathOf says where the container sees key of ConfigMap cmName.
func mountPathOf(dep *appsv1.Deployment, c *corev1.Container, cmName, key string) (string, bool) {
	for _, vm := range c.VolumeMounts {
		vol := volume(dep, vm.Name)
		if vol == nil || vol.ConfigMap == nil || vol.ConfigMap.Name != cmName || vm.SubPath != "" {
			continue
		}
		if len(vol.ConfigMap.Items) == 0 {
			return path.Join(vm.MountPath, key), true
		}
		for _, it := range vol.ConfigMap.Items {
			if it.Key == key {
				return path.Join(vm.MountPath, it.Path), true
			}
		}
	}
	return "", false
}

func volume(dep *appsv1.Deployment, name string) *corev1.Volume {
	for i := range dep.Spec.Template.Spec.Volumes {
		if v := &dep.Spec.Template.Spec.Volumes[i]; v.Name == name {
			return v
		}
	}
	return nil
}

func addrPort(f *findings, where, addr string) int32 {
	_, p, err := net.SplitHostPort(addr)
	n, err2 := strconv.ParseUint(p, 10, 16)
	if err != nil || err2 != nil || n == 0 {
		f.add(where, "%q: want host:port with a port number", addr)
		return 0
	}
	return int32(n)
}

func declares(c *corev1.Container, port int32) bool {
	return slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == port })
}

// resolvePort turns a probe's or Service's target port into the container
// port number, 0 when it names no declared port.
func resolvePort(c *corev1.Container, p intstr.IntOrString, dflt int32) int32 {
	switch {
	case p.Type == intstr.String && p.StrVal != "":
		for _, cp := range c.Ports {
			if cp.Name == p.StrVal {
				return cp.ContainerPort
			}
		}
		return 0
	case p.Type == intstr.Int && p.IntVal != 0:
		if declares(c, p.IntVal) {
			return p.IntVal
		}
		return 0
	case declares(c, dflt):
		return dflt
	}
	return 0
}

func checkProbes(f *findings, where string, c *corev1.Container, httpPort int32) {
	for _, pr := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"livenessProbe", c.LivenessProbe, "/healthz"},
		{"readinessProbe", c.ReadinessProbe, "/readyz"},
	} {
		p := where + " " + pr.name
		if pr.probe == nil || pr.probe.HTTPGet == nil {
			f.add(p, "missing: want an httpGet on %s", pr.path)
			continue
		}
		g := pr.probe.HTTPGet
		if g.Path != pr.path {
			f.add(p, "path %q, want %q", g.Path, pr.path)
		}
		port := resolvePort(c, g.Port, 0)
		switch {
		case port == 0:
			f.add(p, "port %s is not a port the container declares", g.Port.String())
		case httpPort != 0 && port != httpPort:
			f.add(p, "port %d, but vaultwall serves %s on its HTTP port %d", port, pr.path, httpPort)
		}
	}
	if sp := c.StartupProbe; sp != nil && sp.HTTPGet != nil && resolvePort(c, sp.HTTPGet.Port, 0) == 0 {
		f.add(where+" startupProbe", "port %s is not a port the container declares", sp.HTTPGet.Port.String())
	}
}

func checkHardening(f *findings, where string, dep *appsv1.Deployment, c *corev1.Container) {
	pod := dep.Spec.Template.Spec.SecurityContext
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	isTrue := func(b *bool) bool { return b != nil && *b }
	if !isTrue(sc.RunAsNonRoot) && !(sc.RunAsNonRoot == nil && isTrue(pod.RunAsNonRoot)) {
		f.add(where, "runAsNonRoot must be true")
	}
	if !isTrue(sc.ReadOnlyRootFilesystem) {
		f.add(where, "readOnlyRootFilesystem must be true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || isTrue(sc.Privileged) {
		f.add(where, "allowPrivilegeEscalation must be false (and the container unprivileged)")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		f.add(where, "capabilities: drop [ALL] and add none")
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil {
		seccomp = pod.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		f.add(where, "seccompProfile must be RuntimeDefault")
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			f.add(where, "resources.requests.%s unset", r)
		}
	}
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
		f.add(where, "resources.limits.memory unset")
	}
}

func checkProviders(f *findings, s *istioSet, ap *securityv1.AuthorizationPolicy, svc *corev1.Service, grpcSvc *corev1.ServicePort) {
	want := ap.Spec.GetProvider().GetName()
	host := svc.Name + "." + svc.Namespace + "." + clusterDomain
	var first *meshv1alpha1.MeshConfig
	for _, file := range slices.Sorted(maps.Keys(s.meshes)) {
		m := s.meshes[file]
		if m == nil {
			continue
		}
		if first == nil {
			first = m
		} else if !proto.Equal(first, m) {
			f.add(file, "meshConfig differs from the other overlay in %s/; keep them identical", meshDir)
		}
		var p *meshv1alpha1.MeshConfig_ExtensionProvider
		for _, e := range m.GetExtensionProviders() {
			if e.GetName() == want {
				p = e
			}
		}
		if p == nil {
			f.add(file, "no extensionProviders entry named %q (AuthorizationPolicy %s/%s's provider): Istio would install a deny-all on the vault", want, ap.Namespace, ap.Name)
			continue
		}
		g := p.GetEnvoyExtAuthzGrpc()
		if g == nil {
			f.add(file, "provider %q must be envoyExtAuthzGrpc", want)
			continue
		}
		if g.GetService() != host {
			f.add(file, "provider %q service %q, want the Service's host %q", want, g.GetService(), host)
		}
		if grpcSvc != nil && g.GetPort() != uint32(grpcSvc.Port) {
			f.add(file, "provider %q port %d, want the Service's gRPC port %d", want, g.GetPort(), grpcSvc.Port)
		}
		switch t := g.GetTimeout(); {
		case t == nil:
			f.add(file, "provider %q timeout unset: Istio's default is 600s", want)
		case t.AsDuration() <= 0 || t.AsDuration() > maxCheckTimeout:
			f.add(file, "provider %q timeout %s: want more than 0 and at most %s", want, t.AsDuration(), maxCheckTimeout)
		}
		if g.GetFailOpen() {
			f.add(file, "provider %q failOpen: true lets every request through when vaultwall cannot answer", want)
		}
		if code, err := strconv.Atoi(g.GetStatusOnError()); err != nil || code < 500 || code > 599 {
			f.add(file, "provider %q statusOnError %q: want a 5xx, or an outage looks like a Key Vault denial", want, g.GetStatusOnError())
		}
	}
	if first == nil && len(s.meshes) == 0 {
		f.add(meshDir, "no meshConfig overlay")
	}
}

// strictFor reports whether a STRICT PeerAuthentication in ns covers the
// workload sel selects: a namespace-wide one, or one whose selector the
// workload's labels satisfy.
func strictFor(pas []*securityv1.PeerAuthentication, ns string, sel *typev1beta1.WorkloadSelector) bool {
	for _, pa := range pas {
		if pa.Namespace != ns || pa.Spec.GetMtls().GetMode() != securityv1beta1.PeerAuthentication_MutualTLS_STRICT {
			continue
		}
		ps := pa.Spec.GetSelector().GetMatchLabels()
		if len(ps) == 0 || subset(ps, sel.GetMatchLabels()) {
			return true
		}
	}
	return false
}
