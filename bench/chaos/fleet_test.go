package chaos_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"sigs.k8s.io/yaml"

	"github.com/vaultwall/vaultwall/config"
	v1 "github.com/vaultwall/vaultwall/controlplane/api/vaultwall/v1"
)

// etcdMember is one embedded etcd on fixed loopback ports and a data
// directory that outlive it, so that it can be stopped and started again.
type etcdMember struct {
	t            testing.TB
	dir          string
	client, peer url.URL
	e            *embed.Etcd
}

func startEtcd(t testing.TB) *etcdMember {
	m := &etcdMember{t: t, dir: filepath.Join(t.TempDir(), "etcd")}
	c, _ := url.Parse("http://" + freePort(t))
	p, _ := url.Parse("http://" + freePort(t))
	m.client, m.peer = *c, *p
	m.start()
	t.Cleanup(func() {
		if m.e != nil {
			m.e.Close()
		}
	})
	return m
}

func (m *etcdMember) start() {
	m.t.Helper()
	cfg := embed.NewConfig()
	cfg.Name, cfg.Dir = "chaos", m.dir
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{m.client}, []url.URL{m.client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{m.peer}, []url.URL{m.peer}
	cfg.InitialCluster = cfg.Name + "=" + m.peer.String()
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.LogLevel = "fatal"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		m.t.Fatalf("etcd: %v", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		e.Close()
		m.t.Fatal("etcd not ready within 30s")
	}
	m.e = e
}

func (m *etcdMember) stop() { m.e.Close(); m.e = nil }

const managementAudience = "api://vaultwall-chaos-admin"

// fleet is two vaultwall replicas sharing one etcd through the control
// plane, each under its own share of the load.
type fleet struct {
	etcd     *etcdMember
	replicas []*server
	loaders  []*loader
	admin    v1.VaultAdminServiceClient
	adminTok string
	probe    authv3.AuthorizationClient // replica 2's data plane
}

func newFleet(t *testing.T, r *rig) *fleet {
	f := &fleet{etcd: startEtcd(t)}
	var base config.Config
	if err := yaml.Unmarshal(r.cfgBytes, &base); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		cfg := base
		cfg.Server.GRPCAddr, cfg.Server.HTTPAddr = freePort(t), freePort(t)
		cfg.ControlPlane = config.ControlPlane{
			Enabled: true, ListenAddr: freePort(t), Audiences: []string{managementAudience},
			Store: config.Store{Type: "etcd", Endpoints: []string{f.etcd.client.String()}, KeyPrefix: "/vaultwall/contoso-vault/"},
		}
		dir := filepath.Join(r.dir, fmt.Sprintf("replica-%d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		data, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "vault.yaml")
		writeAtomic(t, path, data)
		f.replicas = append(f.replicas, newServer(t, path, cfg.Server.GRPCAddr, cfg.Server.HTTPAddr))
		conn := dial(t, cfg.Server.GRPCAddr)
		l := &loader{client: authv3.NewAuthorizationClient(conn)}
		l.tokens.Store(r.load.tokens.Load())
		f.loaders = append(f.loaders, l)
		if i == 0 {
			f.admin = v1.NewVaultAdminServiceClient(dial(t, cfg.ControlPlane.ListenAddr))
		} else {
			f.probe = l.client
		}
	}
	c := r.issuer.Claims()
	c["aud"], c["roles"] = managementAudience, []string{"Vault.Admin"}
	f.adminTok = r.issuer.Mint(c)
	return f
}

func dial(t testing.TB, addr string) *grpc.ClientConn {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// addIPRule writes an IP rule through replica 1's management API, retrying
// while the store is not back.
func (f *fleet) addIPRule(ctx context.Context, value string) error {
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+f.adminTok)
	for {
		err := func() error {
			c, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			got, err := f.admin.GetVault(c, &v1.GetVaultRequest{})
			if err != nil {
				return err
			}
			rules := append(slices.Clone(got.GetVault().GetProperties().GetNetworkAcls().GetIpRules()), &v1.IpRule{Value: value})
			_, err = f.admin.UpdateVaultProperties(c, &v1.UpdateVaultPropertiesRequest{
				Properties: &v1.VaultProperties{NetworkAcls: &v1.NetworkAcls{IpRules: rules}},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"network_acls.ip_rules"}},
				Etag:       got.GetVault().GetEtag(),
			})
			return err
		}()
		if err == nil || ctx.Err() != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// etcdRow stops etcd under a loaded two-replica fleet, holds, starts it
// again, then writes an IP rule through replica 1 and waits until replica 2
// admits an address only that rule names: nothing may be wrongly allowed
// while etcd is away, and the fleet must converge once it is back.
func etcdRow(t *testing.T, r *rig, holdFor, settleFor time.Duration, rps int) row {
	f := newFleet(t, r)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{}, len(f.loaders))
	for _, l := range f.loaders {
		go func() { l.run(ctx, max(rps/2, 1)); done <- struct{}{} }()
	}
	time.Sleep(settleFor / 2)
	for _, l := range f.loaders {
		l.take()
	}
	f.etcd.stop()
	time.Sleep(holdFor)
	f.etcd.start()
	restoredAt := time.Now()

	const newcomer = "198.51.100.1"
	var notes []string
	wctx, wcancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer wcancel()
	if err := f.addIPRule(wctx, newcomer+"/32"); err != nil {
		t.Errorf("etcd fleet: writing an IP rule after etcd came back: %v", err)
	} else {
		written := time.Since(restoredAt)
		probe := checkRequest(newcomer, "GET", "/secrets/app-secret?api-version=7.5", "Bearer "+r.load.tokens.Load().valid[0], nil)
		for {
			resp, err := f.probe.Check(wctx, probe)
			if err == nil && verdictOf(resp).allow {
				notes = append(notes, fmt.Sprintf("write accepted %v after etcd restarted; replica 2 applied it %v after", written.Round(time.Millisecond), time.Since(restoredAt).Round(time.Millisecond)))
				break
			}
			if wctx.Err() != nil {
				t.Errorf("etcd fleet: replica 2 never applied the rule written through replica 1")
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	time.Sleep(settleFor)
	cancel()
	var all []result
	skipped := 0
	for _, l := range f.loaders {
		<-done
		res, s := l.take()
		all, skipped = append(all, res...), skipped+s
	}
	slices.SortFunc(all, func(a, b result) int { return a.sent.Compare(b.sent) })
	rw := summarize("etcd stopped and restarted (2-replica fleet)", all, skipped, restoredAt, false)
	rw.notes = append(rw.notes, notes...)
	return rw
}
