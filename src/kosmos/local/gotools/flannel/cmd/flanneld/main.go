// Command flanneld runs flannel on a real node of the local environment: the Kubernetes subnet
// manager (each node's lease is its spec.podCIDR, the network comes from net-conf.json) with the
// vxlan and host-gw backends only.
//
// Why our own main: flannel's main package links every backend, and one of them (tencentvpc)
// requires a module version the Go module proxy no longer serves, so the upstream command
// cannot be built from the module. This one calls flannel's packages for the same steps and
// accepts the same flags for what the local environment uses.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/flannel-io/flannel/pkg/backend"
	_ "github.com/flannel-io/flannel/pkg/backend/hostgw"
	_ "github.com/flannel-io/flannel/pkg/backend/vxlan"
	"github.com/flannel-io/flannel/pkg/ip"
	"github.com/flannel-io/flannel/pkg/ipmatch"
	"github.com/flannel-io/flannel/pkg/subnet"
	"github.com/flannel-io/flannel/pkg/subnet/kube"
	"github.com/flannel-io/flannel/pkg/trafficmngr"
	"github.com/flannel-io/flannel/pkg/trafficmngr/iptables"
	"github.com/flannel-io/flannel/pkg/trafficmngr/nftables"
	"github.com/flannel-io/flannel/pkg/version"
	"k8s.io/klog/v2"
)

type options struct {
	showVersion  bool
	apiURL       string
	kubeconfig   string
	prefix       string
	iface        string
	publicIP     string
	ipMasq       bool
	netConfPath  string
	subnetFile   string
	resync       int
	forwardRules bool
}

func parseFlags() options {
	var o options
	klog.InitFlags(nil)
	flag.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	flag.Bool("kube-subnet-mgr", true, "accepted for compatibility: the Kubernetes subnet manager is the only one")
	flag.StringVar(&o.apiURL, "kube-api-url", "", "apiserver URL (default: from the kubeconfig or the pod's service account)")
	flag.StringVar(&o.kubeconfig, "kubeconfig-file", "", "kubeconfig to reach the apiserver")
	flag.StringVar(&o.prefix, "kube-annotation-prefix", "flannel.alpha.coreos.com", "prefix of the node annotations flannel writes")
	flag.StringVar(&o.iface, "iface", "", "interface (name or IP) carrying traffic between nodes (default: the default route's)")
	flag.StringVar(&o.publicIP, "public-ip", "", "address other nodes reach this one at")
	flag.BoolVar(&o.ipMasq, "ip-masq", false, "masquerade traffic leaving the flannel network")
	flag.StringVar(&o.netConfPath, "net-config-path", "/etc/kube-flannel/net-conf.json", "network configuration (Network, Backend)")
	flag.StringVar(&o.subnetFile, "subnet-file", "/run/flannel/subnet.env", "where FLANNEL_NETWORK, FLANNEL_SUBNET, FLANNEL_MTU are written")
	flag.IntVar(&o.resync, "iptables-resync", 5, "seconds between re-checks of the iptables rules")
	flag.BoolVar(&o.forwardRules, "iptables-forward-rules", true, "accept the flannel network in the FORWARD chain")
	_ = flag.Set("logtostderr", "true")
	flag.Parse()
	return o
}

func main() {
	o := parseFlags()
	if o.showVersion {
		fmt.Fprintln(os.Stderr, version.Version)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		klog.Errorf("flanneld: %v", err)
		os.Exit(1)
	}
	klog.Info("flanneld: stopped")
}

func run(ctx context.Context, o options) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	sm, err := kube.NewSubnetManager(ctx, o.apiURL, o.kubeconfig, o.prefix, o.netConfPath, true)
	if err != nil {
		return fmt.Errorf("subnet manager: %w", err)
	}
	config, err := networkConfig(ctx, sm)
	if err != nil {
		return err
	}
	extIface, err := externalInterface(ctx, sm, config, o)
	if err != nil {
		return err
	}
	be, err := backend.NewManager(ctx, sm, extIface).GetBackend(config.BackendType)
	if err != nil {
		return fmt.Errorf("backend %q: %w", config.BackendType, err)
	}
	network, err := be.RegisterNetwork(ctx, &wg, config)
	if err != nil {
		return fmt.Errorf("register network: %w", err)
	}
	if err := trafficRules(ctx, config, network, o); err != nil {
		return err
	}
	lease := network.Lease()
	if err := sm.HandleSubnetFile(o.subnetFile, config, o.ipMasq, lease.Subnet, lease.IPv6Subnet, network.MTU()); err != nil {
		return fmt.Errorf("write %s: %w", o.subnetFile, err)
	}
	klog.Infof("flanneld: ready, lease %s, backend %s, subnet file %s", lease.Subnet, config.BackendType, o.subnetFile)
	wg.Add(1)
	go func() {
		defer wg.Done()
		network.Run(ctx)
	}()
	if err := sm.CompleteLease(ctx, lease, &wg); err != nil {
		klog.Errorf("flanneld: complete lease: %v", err)
	}
	<-ctx.Done()
	return nil
}

// networkConfig waits until the subnet manager has read net-conf.json.
func networkConfig(ctx context.Context, sm subnet.Manager) (*subnet.Config, error) {
	for {
		config, err := sm.GetNetworkConfig(ctx)
		if err == nil && config != nil {
			return config, nil
		}
		klog.Warningf("flanneld: no network config yet: %v", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func externalInterface(ctx context.Context, sm subnet.Manager, config *subnet.Config, o options) (*backend.ExternalInterface, error) {
	stack, err := ipmatch.GetIPFamily(config.EnableIPv4, config.EnableIPv6)
	if err != nil {
		return nil, err
	}
	public := ipmatch.PublicIPOpts{PublicIP: o.publicIP}
	if stored, storedV6 := sm.GetStoredPublicIP(ctx); stored != "" || storedV6 != "" {
		public = ipmatch.PublicIPOpts{PublicIP: stored, PublicIPv6: storedV6}
	}
	name := o.iface
	if name == "" {
		name = public.PublicIP
	}
	extIface, err := ipmatch.LookupExtIface(name, "", "", stack, public)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", name, err)
	}
	return extIface, nil
}

// trafficRules installs the FORWARD accept rules and, with --ip-masq, the masquerade rules
// that exempt the whole flannel network (so pods on other nodes see the client's pod IP).
func trafficRules(ctx context.Context, config *subnet.Config, network backend.Network, o options) error {
	var tm trafficmngr.TrafficManager = &iptables.IPTablesManager{}
	if config.EnableNFTables {
		tm = &nftables.NFTablesManager{}
	}
	if err := tm.Init(ctx); err != nil {
		return fmt.Errorf("traffic manager: %w", err)
	}
	if o.ipMasq {
		noV6 := ip.IP6Net{IP: (*ip.IP6)(big.NewInt(0))}
		prevNetwork := previousCIDR(o.subnetFile, "FLANNEL_NETWORK")
		prevSubnet := previousCIDR(o.subnetFile, "FLANNEL_SUBNET")
		err := tm.SetupAndEnsureMasqRules(ctx, config.Network, prevSubnet, prevNetwork,
			config.IPv6Network, noV6, noV6, network.Lease(), o.resync, false)
		if err != nil {
			return fmt.Errorf("masquerade rules: %w", err)
		}
	}
	if o.forwardRules {
		tm.SetupAndEnsureForwardRules(ctx, config.Network, config.IPv6Network, o.resync)
	}
	return nil
}

// previousCIDR reads KEY=a.b.c.d/n from the subnet file a previous run wrote, so rules for a
// changed subnet are replaced; an absent file or key gives the empty network.
func previousCIDR(path, key string) ip.IP4Net {
	file, err := os.Open(path)
	if err != nil {
		return ip.IP4Net{}
	}
	defer file.Close()
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		name, value, found := strings.Cut(strings.TrimSpace(scanner.Text()), "=")
		if !found || name != key {
			continue
		}
		if _, cidr, err := net.ParseCIDR(value); err == nil {
			return ip.FromIPNet(cidr)
		}
	}
	return ip.IP4Net{}
}
