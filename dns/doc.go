// Package dns is kubelite's cluster DNS server: it answers for the cluster
// zone (cluster.local) from the shared list+watch caches of Services and
// Endpoints, and forwards every other name to the node's upstream resolvers.
//
// It follows the Kubernetes DNS-Based Service Discovery specification,
// schema version 1.0.1
// (https://github.com/kubernetes/dns/blob/master/docs/specification.md).
// With the zone cluster.local and a TTL of 5 s, the records are:
//
//	dns-version.cluster.local.                     TXT   "1.0.1"
//
//	# A ClusterIP Service "web" in namespace "shop", cluster IP 10.96.0.20,
//	# with a port named "http" (TCP 80):
//	web.shop.svc.cluster.local.                    A     10.96.0.20
//	_http._tcp.web.shop.svc.cluster.local.         SRV   0 100 80 web.shop.svc.cluster.local.
//	20.0.96.10.in-addr.arpa.                       PTR   web.shop.svc.cluster.local.
//
//	# A headless Service "db" (clusterIP: None) with two ready endpoints, one
//	# of which has the hostname "db-0":
//	db.shop.svc.cluster.local.                     A     10.244.1.5
//	db.shop.svc.cluster.local.                     A     10.244.2.7
//	db-0.db.shop.svc.cluster.local.                A     10.244.1.5
//	10-244-2-7.db.shop.svc.cluster.local.          A     10.244.2.7
//	_pg._tcp.db.shop.svc.cluster.local.            SRV   0 50 5432 db-0.db.shop.svc.cluster.local.
//	_pg._tcp.db.shop.svc.cluster.local.            SRV   0 50 5432 10-244-2-7.db.shop.svc.cluster.local.
//	5.1.244.10.in-addr.arpa.                       PTR   db-0.db.shop.svc.cluster.local.
//
//	# An ExternalName Service "mail" pointing at mail.example.com:
//	mail.shop.svc.cluster.local.                   CNAME mail.example.com.
//
//	# Any Pod IP, written with dashes ("pods insecure", as CoreDNS calls it):
//	10-244-1-5.shop.pod.cluster.local.             A     10.244.1.5
//
// A name in the zone that exists but has no record of the asked type gets
// an empty NOERROR answer ("NODATA"); a name that does not exist gets
// NXDOMAIN. Both carry the zone's SOA record in the authority section, which
// tells resolvers how long they may cache the negative answer. Until the
// caches have loaded, the server answers SERVFAIL ("try again") rather than
// NXDOMAIN, which resolvers would cache as a fact.
//
// Pods find the server through the resolv.conf that [ResolvConf] writes:
// its search path and "ndots:5" make short names such as "web" and
// "web.shop" work, at the cost of queries such as
// "example.com.shop.svc.cluster.local." — those fall inside the zone and are
// answered NXDOMAIN at once, without a trip upstream.
//
// To run it, build a [Store] over the caches ([NewInformerStore]), then a
// [Server] ([NewServer]) and call [Server.Run]; see the package example.
package dns
