package supervisor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
)

// unprivilegedHostEnv makes the test binary a host run as a user that may
// not create cgroups: it reports what NewGroup logged and what its Group
// did with a limited and an unlimited agent.
const unprivilegedHostEnv = "TEND_TEST_UNPRIVILEGED_HOST"

func init() { testHosts[unprivilegedHostEnv] = runUnprivilegedHost }

func runUnprivilegedHost(string) {
	log := funcr.New(func(prefix, args string) { fmt.Println("log:", args) }, funcr.Options{})
	g, err := NewGroup(GroupOptions{Logger: log})
	if err != nil {
		fmt.Println("NewGroup:", err)
		os.Exit(3)
	}
	defer g.Close(context.Background()) //nolint:errcheck // reported below
	_, why := g.CgroupParent()
	fmt.Println("cgroups:", why)
	limited := Spec{Name: "limited", Path: "/bin/sleep", Args: []string{"1000"}, Resources: Resources{MemoryMax: 64 << 20}}
	_, err = g.Add(limited)
	fmt.Println("limited:", err)
	p, err := g.Add(Spec{Name: "plain", Path: "/bin/sleep", Args: []string{"1000"}, StartSeconds: 1})
	if err == nil {
		err = p.Start(context.Background())
	}
	fmt.Println("plain:", err, p.Status().Boundary)
}

// A host that may not create cgroups says why once, in one log line at
// NewGroup, refuses limits naming the reason, and runs its agents in
// process groups.
func TestHostWithoutCgroupAccess(t *testing.T) {
	name, _ := throwawayUser(t)
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "host.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	for dir := filepath.Dir(bin); dir != os.TempDir() && dir != "/"; dir = filepath.Dir(dir) {
		os.Chmod(dir, 0o755) //nolint:errcheck // best effort: the user must reach the binary
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	host := exec.CommandContext(ctx, bin, "-test.run=^$")
	host.Env = append(os.Environ(), unprivilegedHostEnv+"=1")
	host.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := host.CombinedOutput()
	if err != nil {
		t.Fatalf("host as %s: %v\n%s", name, err, out)
	}
	s := string(out)
	if n := strings.Count(s, "agents are kept in process groups"); n != 1 || !strings.Contains(s, "not writable by uid "+u.Uid) {
		t.Fatalf("want one log line saying why cgroups are unavailable, got %d:\n%s", n, s)
	}
	if !strings.Contains(s, `limited: agent "limited": field "resources" = memory_max=64Mi: limits need cgroups`) {
		t.Fatalf("a limit without cgroups was not refused with the reason:\n%s", s)
	}
	if !strings.Contains(s, "plain: <nil> process group ") {
		t.Fatalf("the unlimited agent did not run in a process group:\n%s", s)
	}
}
