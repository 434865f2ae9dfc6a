// A registry with the OCI referrers API, for the tests only: go-containerregistry's pkg/registry (in memory)
// with referrers support on. Listens on the address given as the first argument (or $REFERRERS_REGISTRY_ADDR)
// and logs one line per request to stderr. Built by scripts/install-referrers-registry.sh.
package main

import (
	"log"
	"net/http"
	"os"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	addr := os.Getenv("REFERRERS_REGISTRY_ADDR")
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	if addr == "" {
		log.Fatal("usage: referrers-registry HOST:PORT")
	}
	handler := registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(os.Stderr, "", 0)))
	log.Fatal(http.ListenAndServe(addr, handler))
}
