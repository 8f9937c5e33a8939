// Argo CD's application controller, repo-server, config-management-plugin server and git credential helper
// as one binary, from the packages of github.com/argoproj/argo-cd/v3 (as its own cmd/main.go dispatches, less
// the API server, the UI and the other components the test kit does not run). The command is the first
// argument, else $ARGOCD_BINARY_NAME (the repo-server runs `argocd` with ARGOCD_BINARY_NAME=argocd-git-ask-pass
// as git's askpass helper), else the base name of argv[0]:
//
//	argocd argocd-application-controller|argocd-repo-server|argocd-cmp-server|argocd-git-ask-pass [flags]
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	appcontroller "github.com/argoproj/argo-cd/v3/cmd/argocd-application-controller/commands"
	cmpserver "github.com/argoproj/argo-cd/v3/cmd/argocd-cmp-server/commands"
	gitaskpass "github.com/argoproj/argo-cd/v3/cmd/argocd-git-ask-pass/commands"
	reposerver "github.com/argoproj/argo-cd/v3/cmd/argocd-repo-server/commands"
	"github.com/argoproj/argo-cd/v3/common"
	"github.com/argoproj/argo-cd/v3/util/log"
)

func init() {
	klog.SetLogger(log.NewLogrusLogger(log.NewWithCurrentConfig()))
}

// Unlike Argo CD's cmd/main.go this does not call util/grpc.DisableSRVLookups: it turns off the DNS SRV lookups
// that gRPC's grpclb balancer turns on when it is linked in, and panics when they are off already, as they are
// here (none of these commands links grpclb).
func main() {
	name := filepath.Base(os.Args[0])
	if v := os.Getenv("ARGOCD_BINARY_NAME"); v != "" {
		name = v
	}
	if len(os.Args) > 1 && command(os.Args[1]) != nil {
		name = os.Args[1]
		os.Args = append(os.Args[:1], os.Args[2:]...)
	}
	cmd := command(name)
	if cmd == nil {
		fmt.Fprintf(os.Stderr, "usage: %s %s|%s|%s|%s [flags]\n", filepath.Base(os.Args[0]),
			common.CommandApplicationController, common.CommandRepoServer, common.CommandCMPServer, common.CommandGitAskPass)
		os.Exit(2)
	}
	if err := cmd.Execute(); err != nil {
		os.Exit(1)
	}
}

func command(name string) *cobra.Command {
	switch name {
	case common.CommandApplicationController:
		return appcontroller.NewCommand()
	case common.CommandRepoServer:
		return reposerver.NewCommand()
	case common.CommandCMPServer:
		return cmpserver.NewCommand()
	case common.CommandGitAskPass:
		return gitaskpass.NewCommand()
	}
	return nil
}
