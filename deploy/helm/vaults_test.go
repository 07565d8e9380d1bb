package helm_test

import (
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	vwengine "github.com/vaultwall/vaultwall/engine"

	"github.com/vaultwall/vaultwall/authz/token"
)

// TestChartVaults renders testdata/vaults-values.yaml (three vaults: a file
// named in full, a bare name, a JSON string) and runs what the pod would see
// through vaultwall itself: the ConfigMap is laid out as the kubelet mounts
// it (..data symlinks, a hidden timestamped directory) and the main file is
// compiled with engine.CompileSet, as `vaultwall config validate` does.
func TestChartVaults(t *testing.T) {
	r := render(t, "testdata/vaults-values.yaml")
	checkCore(t, r)
	cm, d := r.configMaps[0], r.deployments[0]

	main := vaultConfig(t, cm)
	if main.Vaults.Dir != "/etc/vaultwall/vaults.d" || !main.Vaults.MetricsLabel {
		t.Errorf("vault.yaml vaults %+v, want dir /etc/vaultwall/vaults.d and the values' metricsLabel kept", main.Vaults)
	}
	if main.Vault.Name != "" {
		t.Errorf("the main file still has vault %q", main.Vault.Name)
	}

	// Every vault is a key of the ConfigMap mounted in vaults.d/, under
	// the file name vaultwall reads.
	var files []string
	for _, it := range volume(t, d, "config").ConfigMap.Items {
		if dir, file := path.Split(it.Path); dir == "vaults.d/" {
			files = append(files, file)
			if _, ok := cm.Data[it.Key]; !ok {
				t.Errorf("item %s: no key %s in the ConfigMap", it.Path, it.Key)
			}
		}
	}
	if want := []string{"contoso-vault.yaml", "fabrikam-vault.yaml", "northwind-vault.json"}; !slices.Equal(files, want) {
		t.Errorf("vaults.d/ holds %v, want %v", files, want)
	}

	set := compileMounted(t, r)
	defer set.Close()
	if !set.Multi {
		t.Fatal("the rendered configuration is not a multi-vault one")
	}
	var names []string
	for _, rt := range set.Runtimes {
		names = append(names, rt.Config.Vault.Name)
	}
	slices.Sort(names)
	if want := []string{"contoso-vault", "fabrikam-vault", "northwind-vault"}; !slices.Equal(names, want) {
		t.Errorf("vaults in force %v, want %v", names, want)
	}
	if v := set.Vault("fabrikam-vault"); v == nil || !slices.Contains(v.Config.Vault.Hostnames, "fabrikam-vault.privatelink.vaultcore.azure.net") {
		t.Error("fabrikam-vault lost its hostnames")
	}
	// The main file's process-wide sections reach every vault.
	for _, rt := range set.Runtimes {
		if len(rt.Config.TrustedServices.Services) != 1 || rt.Config.Server.GRPCAddr != ":9191" {
			t.Errorf("%s: trusted services %v, grpcAddr %q: the main file's sections are not under it", rt.Config.Vault.Name,
				rt.Config.TrustedServices.Services, rt.Config.Server.GRPCAddr)
		}
	}
}

// compileMounted writes the config volume as the kubelet does (each item
// under a hidden timestamped directory, ..data pointing at it, a symlink per
// top-level entry) and compiles the container's --config with
// engine.CompileSet. Paths below the mount point in the main file are moved
// to the temporary mount.
func compileMounted(t *testing.T, r *rendered) *vwengine.Set {
	t.Helper()
	d, cm := r.deployments[0], r.configMaps[0]
	c := d.Spec.Template.Spec.Containers[0]
	i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "config" })
	mountPath := c.VolumeMounts[i].MountPath
	mnt := t.TempDir()
	const ts = "..2025_01_01_00_00_00.000000001"
	top := map[string]bool{}
	for _, it := range volume(t, d, "config").ConfigMap.Items {
		data := cm.Data[it.Key]
		if it.Key == "vault.yaml" {
			data = strings.ReplaceAll(data, mountPath+"/", mnt+"/")
		}
		p := filepath.Join(mnt, ts, filepath.FromSlash(it.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		top[strings.Split(it.Path, "/")[0]] = true
	}
	if err := os.Symlink(ts, filepath.Join(mnt, "..data")); err != nil {
		t.Fatal(err)
	}
	for e := range top {
		if err := os.Symlink(filepath.Join("..data", e), filepath.Join(mnt, e)); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath, ok := strings.CutPrefix(c.Args[1], mountPath+"/")
	if !ok {
		t.Fatalf("--config %q is not below the config mount %s", c.Args[1], mountPath)
	}
	keys := token.NewKeyStore(token.StoreOptions{})
	t.Cleanup(func() { _ = keys.Close() })
	b := &vwengine.Builder{Keys: keys}
	set, err := vwengine.CompileSet(t.Context(), filepath.Join(mnt, cfgPath), b.Build, nil)
	if err != nil {
		t.Fatalf("vaultwall refuses the rendered configuration: %v", err)
	}
	return set
}

// renderErr renders the chart with values (YAML over the chart's) and
// returns the render's error.
func renderErr(t *testing.T, values string) error {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	vals := chartutil.Values{}
	if err := yaml.Unmarshal([]byte(values), &vals); err != nil {
		t.Fatal(err)
	}
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: release, Namespace: namespace, Revision: 1, IsInstall: true},
		chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	_, err = engine.Render(ch, rv)
	return err
}

// TestChartVaultsRefused: vaults values that could not work fail the
// render, saying why.
func TestChartVaultsRefused(t *testing.T) {
	const vault = `{vault: {name: contoso-vault, tenantId: 00000000-0000-0000-0000-000000000001, location: westeurope}}`
	const noDefaults = "config: {vault: null, properties: null, network: null}\n"
	for _, tc := range []struct {
		name, values string
		want         []string
	}{
		{"single-vault defaults kept", "vaults: {a.yaml: " + vault + "}\n",
			[]string{"config.vault, config.properties, config.network still set", "set them to null"}},
		{"network kept", "config: {vault: null, properties: null}\nvaults: {a.yaml: " + vault + "}\n",
			[]string{"config.network still set"}},
		{"hidden file", noDefaults + "vaults: {.a.yaml: " + vault + "}\n",
			[]string{"vaults..a.yaml", "must start with a letter or digit"}},
		{"not a file name", noDefaults + "vaults: {a/b.yaml: " + vault + "}\n",
			[]string{"vaults.a/b.yaml"}},
		{"one file twice", noDefaults + "vaults: {a: " + vault + ", a.yaml: " + vault + "}\n",
			[]string{"vaults.a and vaults.a.yaml are both the file a.yaml"}},
		{"empty", noDefaults + "vaults: {a.yaml: {}}\n",
			[]string{"vaults.a.yaml is empty"}},
		{"a list", noDefaults + "vaults: {a.yaml: [1]}\n",
			[]string{"vaults.a.yaml: want the vault's document as a mapping or a string"}},
		{"vaults.dir elsewhere", "config: {vault: null, properties: null, network: null, vaults: {dir: /srv/vaults}}\nvaults: {a.yaml: " + vault + "}\n",
			[]string{`config.vaults.dir is "/srv/vaults"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := renderErr(t, tc.values)
			if err == nil {
				t.Fatal("rendered")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
