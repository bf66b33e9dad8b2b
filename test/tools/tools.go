//go:build tools

// Package tools pins the Kubernetes binaries the local control plane runs
// (kube-apiserver, kube-controller-manager, kubectl) and etcd to the versions
// in this module's go.mod. They build from the Go module proxy:
//
//	go build -o ../../bin/k8s/ k8s.io/kubernetes/cmd/kube-apiserver ...
//
// This module is separate from Tollgate's own so the Kubernetes server tree
// never enters Tollgate's dependency graph.
package tools

import (
	_ "go.etcd.io/etcd/server/v3/etcdmain"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
