// Command vcsim-launcher serves govmomi's simulated vCenter for vmfailover's tests.
//
// It builds the inventory from flags (simulator.VPX() with our counts), listens on 127.0.0.1
// only, prints one JSON line with its URL on stdout once it serves, and stops cleanly on SIGTERM
// or SIGINT (server closed, temporary datastore folders removed).
//
// Test-only HTTP hooks live beside the SOAP endpoint under /_vmfailover/:
//
//	POST /_vmfailover/host?name=H&state=notResponding|connected&power=poweredOff|poweredOn
//	     a host failure (or its repair) as vCenter would report it; its VMs follow
//	GET  /_vmfailover/stats              {"soap_requests": N, "restarts": R}: SOAP round trips
//	                                     served, and how often the service came back
//	POST /_vmfailover/stats/reset        set the count to zero
//	POST /_vmfailover/restart?down_ms=N  restart the vCenter service as vCenter does: every
//	                                     connection is cut and every session ends, nothing
//	                                     answers for N ms, then the same port serves again with
//	                                     the inventory as it was
//	POST /_vmfailover/sessions/end       end every session (as when vCenter drops them), the
//	                                     connections stay
package main

import (
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (loopback only)")
	datacenters := flag.Int("datacenters", 1, "datacenters")
	clusters := flag.Int("clusters", 1, "clusters per datacenter")
	clusterHosts := flag.Int("cluster-hosts", 3, "hosts per cluster")
	standalone := flag.Int("standalone-hosts", 1, "standalone hosts per datacenter")
	datastores := flag.Int("datastores", 1, "datastores per datacenter")
	portgroups := flag.Int("portgroups", 1, "distributed port groups per datacenter")
	machines := flag.Int("vms", 2, "VMs per resource pool (each cluster and standalone host has one)")
	autostart := flag.Bool("autostart", true, "power the model's VMs on")
	user := flag.String("user", "", "the only user name accepted (empty: any non-empty pair)")
	password := flag.String("password", "", "the only password accepted with -user")
	certFile := flag.String("cert", "", "PEM certificate to serve TLS with (empty: plain http)")
	keyFile := flag.String("key", "", "PEM private key of -cert")
	taskDelay := flag.Int("task-delay", 0, "milliseconds a task stays running before it ends")
	flag.Parse()

	host, _, err := splitHost(*listen)
	if err != nil || (host != "127.0.0.1" && host != "localhost" && host != "::1") {
		fail("-listen must be a loopback address, got %q", *listen)
	}

	model := simulator.VPX()
	model.Datacenter = *datacenters
	model.Cluster = *clusters
	model.ClusterHost = *clusterHosts
	model.Host = *standalone
	model.Datastore = *datastores
	model.Portgroup = *portgroups
	model.Machine = *machines
	model.Autostart = *autostart
	simulator.TaskDelay = *taskDelay
	if err := model.Create(); err != nil {
		fail("building the inventory: %s", err)
	}
	defer model.Remove()

	service := model.Service
	service.Listen = &url.URL{Host: *listen}
	if *user != "" {
		service.Listen.User = url.UserPassword(*user, *password)
	}
	if *certFile != "" {
		pair, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			fail("loading the certificate: %s", err)
		}
		service.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	}

	var requests int64
	var server *simulator.Server
	hooks := http.NewServeMux()
	hooks.HandleFunc("/_vmfailover/host", hostHook)
	hooks.HandleFunc("/_vmfailover/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]int64{
			"soap_requests": atomic.LoadInt64(&requests),
			"restarts":      atomic.LoadInt64(&restarts),
		})
	})
	hooks.HandleFunc("/_vmfailover/sessions/end", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		simulator.Map.SessionManager().ForgetSessions()
		writeJSON(w, map[string]bool{"ended": true})
	})
	hooks.HandleFunc("/_vmfailover/restart", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		down, err := strconv.Atoi(r.URL.Query().Get("down_ms"))
		if err != nil || down < 0 {
			http.Error(w, "down_ms must be a whole number >= 0", http.StatusBadRequest)
			return
		}
		if !atomic.CompareAndSwapInt32(&restarting, 0, 1) {
			http.Error(w, "a restart is under way", http.StatusConflict)
			return
		}
		writeJSON(w, map[string]int64{"down_ms": int64(down), "restarts": atomic.LoadInt64(&restarts)})
		go restartService(server, time.Duration(down)*time.Millisecond)
	})
	hooks.HandleFunc("/_vmfailover/stats/reset", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		atomic.StoreInt64(&requests, 0)
		writeJSON(w, map[string]int64{"soap_requests": 0})
	})

	server = service.NewServer()
	soap := server.Config.Handler
	// Set before the URL is printed, so before any client can connect.
	server.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_vmfailover/") {
			hooks.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/sdk") {
			atomic.AddInt64(&requests, 1)
		}
		soap.ServeHTTP(w, r)
	})

	ready := map[string]string{"url": server.URL.Scheme + "://" + server.URL.Host + "/sdk"}
	out, _ := json.Marshal(ready)
	fmt.Println(string(out))
	os.Stdout.Sync()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	server.Close()
}

var (
	restarts   int64 // how often the service came back
	restarting int32 // 1 while a restart is under way
)

// restartService does to clients what a restart of vCenter does: every connection is cut (calls
// in flight fail, though their work may be done), every session ends, nothing answers for
// ``down``, then the same address serves again, with the inventory and its tasks as they were.
func restartService(server *simulator.Server, down time.Duration) {
	defer atomic.StoreInt32(&restarting, 0)
	time.Sleep(50 * time.Millisecond) // let the hook's answer leave first
	address := server.Listener.Addr().String()
	_ = server.Listener.Close()
	server.CloseClientConnections()
	simulator.Map.SessionManager().ForgetSessions()
	time.Sleep(down)
	var listener net.Listener
	for attempt := 0; ; attempt++ {
		found, err := net.Listen("tcp", address)
		if err == nil {
			listener = found
			break
		}
		if attempt == 200 {
			fail("listening again on %s: %s", address, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if server.TLS != nil {
		listener = tls.NewListener(listener, server.TLS)
	}
	server.Listener = listener
	atomic.AddInt64(&restarts, 1)
	go func() { _ = server.Config.Serve(listener) }()
}

// hostHook changes a host's runtime as vCenter reports a host failure (or its repair). The VMs
// on a host that does not respond are "disconnected" with their last known power state, as
// vCenter shows them; a host reported powered off takes its VMs' power with it.
func hostHook(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	query := r.URL.Query()
	name := query.Get("name")
	state := types.HostSystemConnectionState(query.Get("state"))
	power := types.HostSystemPowerState(query.Get("power"))
	switch state {
	case types.HostSystemConnectionStateConnected, types.HostSystemConnectionStateNotResponding,
		types.HostSystemConnectionStateDisconnected:
	default:
		http.Error(w, "state must be connected, notResponding or disconnected", http.StatusBadRequest)
		return
	}
	switch power {
	case "", types.HostSystemPowerStatePoweredOn, types.HostSystemPowerStatePoweredOff:
	default:
		http.Error(w, "power must be poweredOn or poweredOff", http.StatusBadRequest)
		return
	}
	var found *simulator.HostSystem
	for _, entity := range simulator.Map.All("HostSystem") {
		if h, ok := entity.(*simulator.HostSystem); ok && h.Name == name {
			found = h
		}
	}
	if found == nil {
		http.Error(w, fmt.Sprintf("no host named %q", name), http.StatusNotFound)
		return
	}
	changes := []types.PropertyChange{
		{Name: "runtime.connectionState", Val: state},
		{Name: "summary.runtime.connectionState", Val: state},
	}
	if power != "" {
		changes = append(changes,
			types.PropertyChange{Name: "runtime.powerState", Val: power},
			types.PropertyChange{Name: "summary.runtime.powerState", Val: power})
	}
	simulator.Map.WithLock(found, func() { simulator.Map.Update(found, changes) })

	vmState := types.VirtualMachineConnectionStateConnected
	if state != types.HostSystemConnectionStateConnected {
		vmState = types.VirtualMachineConnectionStateDisconnected
	}
	for _, ref := range found.Vm {
		vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
		if !ok {
			continue
		}
		vmChanges := []types.PropertyChange{
			{Name: "runtime.connectionState", Val: vmState},
			{Name: "summary.runtime.connectionState", Val: vmState},
		}
		if power == types.HostSystemPowerStatePoweredOff {
			off := types.VirtualMachinePowerStatePoweredOff
			vmChanges = append(vmChanges,
				types.PropertyChange{Name: "runtime.powerState", Val: off},
				types.PropertyChange{Name: "summary.runtime.powerState", Val: off})
		}
		simulator.Map.WithLock(vm, func() { simulator.Map.Update(vm, vmChanges) })
	}
	writeJSON(w, map[string]interface{}{"host": name, "state": state, "vms": len(found.Vm), "ref": mo.Reference(found).Reference().Value})
}

func splitHost(address string) (string, string, error) {
	u, err := url.Parse("//" + address)
	if err != nil {
		return "", "", err
	}
	return u.Hostname(), u.Port(), nil
}

func writeJSON(w http.ResponseWriter, value interface{}) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(value)
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "vcsim-launcher: "+format+"\n", args...)
	os.Exit(2)
}
