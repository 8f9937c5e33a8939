// Command etcd is etcd's own server entry point, built from go.etcd.io/etcd/server/v3 for the test kit.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
