// Package admin serves each node's admin HTTP API: JSON status, health and
// readiness. Every endpoint except /healthz requires the cluster's admin token
// as a bearer token. clusterctl and the console are clients of this API (the
// Client type here); they import nothing else of the node.
package admin
