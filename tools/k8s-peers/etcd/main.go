// etcd, built from go.etcd.io/etcd/server/v3 at the version k8s.io/kubernetes requires: the
// etcd module's own main package carries replace directives, so `go install` of it cannot work;
// this wrapper is its main.go in one line.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
