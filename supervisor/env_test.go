package supervisor

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runOnce starts the agent with the given spec tweaks, waits for it to
// exit on its own and returns its stdout.
func runOnce(t *testing.T, edit func(*Spec), args ...string) string {
	t.Helper()
	var out lockedWriter
	spec := agentSpec(t, append(args, "-after", "100ms")...)
	spec.Restart.Policy = RestartNever
	spec.Stdout = &out
	edit(&spec)
	p := newProcess(t, spec)
	if err := p.Start(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if st, err := p.Wait(ctxTimeout(t, 5*time.Second)); err != nil || st.State != Exited {
		t.Fatalf("wait: %v %+v", err, st)
	}
	return out.String()
}

func TestEnvironmentIsExplicitUnlessInherited(t *testing.T) {
	t.Setenv("TEND_HOST_ONLY", "from-host")
	got := runOnce(t, func(s *Spec) { s.Env = []string{"A=1"} }, "-print-env", "TEND_HOST_ONLY")
	if got != "TEND_HOST_ONLY=\n" {
		t.Fatalf("explicit env leaked the host's variable: %q", got)
	}
	got = runOnce(t, func(s *Spec) { s.InheritEnv = true }, "-print-env", "TEND_HOST_ONLY")
	if got != "TEND_HOST_ONLY=from-host\n" {
		t.Fatalf("inherited env: %q", got)
	}
	got = runOnce(t, func(s *Spec) { s.InheritEnv = true; s.Env = []string{"TEND_HOST_ONLY=override"} }, "-print-env", "TEND_HOST_ONLY")
	if got != "TEND_HOST_ONLY=override\n" {
		t.Fatalf("Env must override the inherited value: %q", got)
	}
}

func TestWorkDir(t *testing.T) {
	dir := t.TempDir()
	if got := runOnce(t, func(s *Spec) { s.Dir = dir }, "-print-wd"); got != "wd="+dir+"\n" {
		t.Fatalf("got %q, want wd=%s", got, dir)
	}
}

// Runs the agent as a throwaway user with a supplementary group, then with
// an explicit empty group list. Needs root to create the user and setuid.
func TestCredentials(t *testing.T) {
	name, bin := throwawayUser(t)
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroup(name + "x")
	if err != nil {
		t.Fatal(err)
	}
	got := runOnce(t, func(s *Spec) { s.Path = bin; s.User = name }, "-print-ids")
	want := fmt.Sprintf("uid=%s gid=%s groups=", u.Uid, u.Gid)
	if !strings.HasPrefix(got, want) || !strings.Contains(got, g.Gid) {
		t.Fatalf("as %s: %q, want %s... including supplementary group %s", name, got, want, g.Gid)
	}
	got = runOnce(t, func(s *Spec) { s.Path = bin; s.User = name; s.Groups = []string{} }, "-print-ids")
	if want := fmt.Sprintf("uid=%s gid=%s groups=[]\n", u.Uid, u.Gid); got != want {
		t.Fatalf("with no supplementary groups: %q, want %q", got, want)
	}
}

// throwawayUser creates a user (with a supplementary group NAMEx) removed
// at cleanup, and a copy of the agent binary that user can run; it skips
// unless root with useradd.
func throwawayUser(t *testing.T) (name, bin string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a user and runs the agent as it")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("useradd not installed")
	}
	name = fmt.Sprintf("tendtest%d", os.Getpid()%100000)
	run := func(args ...string) {
		if b, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, b)
		}
	}
	run("groupadd", name+"x")
	t.Cleanup(func() { exec.Command("groupdel", name+"x").Run() })
	run("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "-G", name+"x", name)
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	bin = copyAgent(t)
	for dir := filepath.Dir(bin); dir != os.TempDir() && dir != "/"; dir = filepath.Dir(dir) {
		os.Chmod(dir, 0o755)
	}
	return name, bin
}
