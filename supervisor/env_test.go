package supervisor

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
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

// The environment file's lines, in systemd's syntax, override Env; a
// child without PATH gets systemd's default; errors name the line.
func TestEnvFile(t *testing.T) {
	path := tempFile(t, "agent.env")
	content := "# comment\n; another\n\nA=from-file\nB = \"two words \\\"quoted\\\"\"\nC='lit $x'\nD=cont\\\ninued\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	env, err := buildEnv([]string{"A=from-env", "E=kept"}, path, false)
	want := []string{"A=from-file", "E=kept", `B=two words "quoted"`, "C=lit $x", "D=continued", defaultPath}
	if err != nil || !slices.Equal(env, want) {
		t.Fatalf("env %q, %v; want %q", env, err, want)
	}
	if env, err := buildEnv([]string{"PATH=/opt/bin"}, "-/nonexistent/agent.env", false); err != nil || !slices.Equal(env, []string{"PATH=/opt/bin"}) {
		t.Fatalf("optional missing file with PATH set: %q, %v", env, err)
	}
	if _, err := buildEnv(nil, "/nonexistent/agent.env", false); err == nil || !strings.Contains(err.Error(), "env_file") {
		t.Fatalf("missing env file: %v", err)
	}
	os.WriteFile(path, []byte("OK=1\nnot an assignment\n"), 0o600)
	if _, err := buildEnv(nil, path, false); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad line: %v, want line 2 named", err)
	}
}

// A child started with an empty Env finds programs by name.
func TestDefaultPathReachesTheChild(t *testing.T) {
	var out lockedWriter
	spec := agentSpec(t, "-print-env", "PATH")
	spec.Stdout = &out
	p := newProcess(t, spec)
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, &out, defaultPath+"\n")
}

func FuzzParseEnvFile(f *testing.F) {
	f.Add([]byte("A=1\nB=\"x\\\"y\"\n# c\nC='z'\\\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := parseEnvFile(data)
		if err != nil {
			return
		}
		for _, e := range env {
			if k, _, ok := strings.Cut(e, "="); !ok || !validEnvKey(k) {
				t.Fatalf("entry %q from %q", e, data)
			}
		}
	})
}
