// Command coredns is CoreDNS with the stock plugins the Kosmos clusters use: the cluster DNS
// (kubeadm's Corefile: errors, health, ready, kubernetes, prometheus, forward, cache, loop,
// reload, loadbalance) and kosmos-coredns (file, for the clusterset.local zone the mcs-dns
// sidecar writes), plus log and whoami for debugging.
//
// Why our own main: upstream's main links every plugin, including the route53, azure and
// clouddns ones whose cloud SDKs triple the build time and the binary for nothing we run.
// The plugins are upstream's, unchanged; CoreDNS runs them in its own fixed directive order.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/autopath"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/file"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/rewrite"
	_ "github.com/coredns/coredns/plugin/root"
	_ "github.com/coredns/coredns/plugin/whoami"
)

func main() {
	coremain.Run()
}
