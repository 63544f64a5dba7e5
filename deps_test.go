package hoard_test

import (
	"os/exec"
	"strings"
	"testing"
)

// storeClients are the packages that only a program using a network store
// should link: the store packages and their client libraries.
var storeClients = []string{
	"github.com/redis/rueidis",
	"github.com/bradfitz/gomemcache",
	"github.com/hoardcache/hoard/redis",
	"github.com/hoardcache/hoard/memcached",
	"github.com/hoardcache/hoard/memory",
}

// deps returns what `go list -deps` says pkg depends on (its non-test
// imports, transitively).
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr)
	}
	return strings.Fields(string(out))
}

// dependsOn returns the packages of list under one of prefixes.
func dependsOn(list, prefixes []string) []string {
	var found []string
	for _, p := range list {
		for _, pre := range prefixes {
			if p == pre || strings.HasPrefix(p, pre+"/") {
				found = append(found, p)
			}
		}
	}
	return found
}

// TestDepsNoStoreClient: package hoard, and storetest (which third-party
// stores import), link no store: building the configured store is package
// stores' job. The check is made on stores too, to show that it finds them.
func TestDepsNoStoreClient(t *testing.T) {
	for _, pkg := range []string{"github.com/hoardcache/hoard", "github.com/hoardcache/hoard/storetest"} {
		if found := dependsOn(deps(t, pkg), storeClients); len(found) > 0 {
			t.Errorf("%s depends on %v; it must link no store (package stores builds them)", pkg, found)
		}
	}
	all := deps(t, "github.com/hoardcache/hoard/stores")
	for _, c := range storeClients {
		if len(dependsOn(all, []string{c})) == 0 {
			t.Errorf("package stores does not depend on %s: the check above would not see it", c)
		}
	}
}
