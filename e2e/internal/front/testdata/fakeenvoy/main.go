// Command fakeenvoy plays Envoy's process contract for StartEnvoy's tests
// where no Envoy is installed: --version, -c <bootstrap.json>,
// --admin-address-path, an admin interface answering /ready and
// /listeners?format=json, a listener on the port it reports, and a clean
// exit on SIGTERM. It proxies nothing.
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	var cfgPath, adminPath string
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--version":
			fmt.Println("\nenvoy  version: fake/0.0.0/Clean/RELEASE/BoringSSL")
			return
		case "-c":
			i++
			cfgPath = args[i]
		case "--admin-address-path":
			i++
			adminPath = args[i]
		}
	}
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		fail(err)
	}
	var cfg struct {
		Admin struct {
			Address struct {
				SocketAddress struct {
					Address string `json:"address"`
				} `json:"socket_address"`
			} `json:"address"`
		} `json:"admin"`
		StaticResources struct {
			Listeners []struct {
				Name string `json:"name"`
			} `json:"listeners"`
		} `json:"static_resources"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil || len(cfg.StaticResources.Listeners) != 1 {
		fail(fmt.Errorf("bootstrap: %v (%d listeners)", err, len(cfg.StaticResources.Listeners)))
	}
	front, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	go func() {
		for {
			c, err := front.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	admin, err := net.Listen("tcp", cfg.Admin.Address.SocketAddress.Address+":0")
	if err != nil {
		fail(err)
	}
	port := front.Addr().(*net.TCPAddr).Port
	mux := http.NewServeMux()
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "LIVE") })
	mux.HandleFunc("/listeners", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"listener_statuses":[{"name":%q,"local_address":{"socket_address":{"address":"127.0.0.1","port_value":%d}}}]}`,
			cfg.StaticResources.Listeners[0].Name, port)
	})
	go func() { _ = http.Serve(admin, mux) }()
	if err := os.WriteFile(adminPath, []byte(admin.Addr().String()), 0o600); err != nil {
		fail(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "fakeenvoy:", err)
	os.Exit(1)
}
