package edgedaemon

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tend-dev/tend/internal/testagent"
)

// browser is a headless Chromium driven over the DevTools protocol on a
// pipe (--remote-debugging-pipe: commands in on fd 3, replies out on fd
// 4, each a JSON message ending in a NUL byte), with one page attached.
type browser struct {
	t       testing.TB
	cmd     *exec.Cmd
	in      *os.File // our end of fd 3
	session string   // the page's

	mu      sync.Mutex
	nextID  int
	waiting map[int]chan cdpReply
	done    chan struct{} // closed when the reader has ended
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// chromiumPath finds Debian's chromium, or skips.
func chromiumPath(t testing.TB) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium (Debian package chromium): the status page is not tried in a browser")
	return ""
}

// newBrowser starts Chromium with a page of width x height.
func newBrowser(t testing.TB, width, height int) *browser {
	path := chromiumPath(t)
	cmdR, in, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	out, cmdW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--remote-debugging-pipe", "--user-data-dir="+t.TempDir(), fmt.Sprintf("--window-size=%d,%d", width, height), "about:blank")
	cmd.ExtraFiles = []*os.File{cmdR, cmdW}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmdR.Close()
	cmdW.Close()
	b := &browser{t: t, cmd: cmd, in: in, waiting: map[int]chan cdpReply{}, done: make(chan struct{})}
	go b.read(out)
	t.Cleanup(b.close)

	var target struct{ TargetID string }
	b.callIn("", "Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var attached struct{ SessionID string }
	b.callIn("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	b.session = attached.SessionID
	b.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}, nil)
	return b
}

// read hands each reply to its caller; events are dropped.
func (b *browser) read(out *os.File) {
	defer close(b.done)
	defer out.Close()
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 64<<20) // screenshots are large
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		for i, c := range data {
			if c == 0 {
				return i + 1, data[:i], nil
			}
		}
		if atEOF && len(data) > 0 {
			return len(data), data, nil
		}
		return 0, nil, nil
	})
	for sc.Scan() {
		var msg struct {
			ID int `json:"id"`
			cdpReply
		}
		if json.Unmarshal(sc.Bytes(), &msg) != nil || msg.ID == 0 {
			continue
		}
		b.mu.Lock()
		ch := b.waiting[msg.ID]
		delete(b.waiting, msg.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- msg.cdpReply
		}
	}
}

// call runs a command on the page and decodes its result into out.
func (b *browser) call(method string, params any, out any) {
	b.t.Helper()
	b.callIn(b.session, method, params, out)
}

func (b *browser) callIn(session, method string, params any, out any) {
	b.t.Helper()
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpReply, 1)
	b.waiting[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method, "params": params}
	if session != "" {
		msg["sessionId"] = session
	}
	data, _ := json.Marshal(msg)
	if _, err := b.in.Write(append(data, 0)); err != nil {
		b.t.Fatalf("%s: %v", method, err)
	}
	select {
	case r := <-ch:
		if r.Error != nil {
			b.t.Fatalf("%s: %s", method, r.Error.Message)
		}
		if out != nil {
			if err := json.Unmarshal(r.Result, out); err != nil {
				b.t.Fatalf("%s: %v in %s", method, err, r.Result)
			}
		}
	case <-b.done:
		b.t.Fatalf("%s: chromium ended", method)
	case <-time.After(30 * time.Second):
		b.t.Fatalf("%s: no reply in 30s", method)
	}
}

// eval evaluates a JavaScript expression in the page (awaiting a
// promise) and decodes its value into out.
func (b *browser) eval(expr string, out any) {
	b.t.Helper()
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	b.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &r)
	if r.ExceptionDetails != nil {
		b.t.Fatalf("%s: %s %s", expr, r.ExceptionDetails.Text, r.ExceptionDetails.Exception.Description)
	}
	if out != nil {
		if err := json.Unmarshal(r.Result.Value, out); err != nil {
			b.t.Fatalf("%s = %s: %v", expr, r.Result.Value, err)
		}
	}
}

// waitUntil evaluates a boolean expression until it is true.
func (b *browser) waitUntil(what, expr string, timeout time.Duration) {
	b.t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		var ok bool
		b.eval("(() => { try { return Boolean("+expr+") } catch (e) { return false } })()", &ok) // the page may not be there yet
		if ok {
			return
		}
		if time.Now().After(deadline) {
			var html string
			b.eval("location.href + '\\n' + (document.body ? document.body.innerText : '(no body)')", &html)
			b.t.Fatalf("the page never showed %s; it shows:\n%s", what, html)
		}
	}
}

// navigate loads url in the page.
func (b *browser) navigate(url string) {
	b.t.Helper()
	b.call("Page.navigate", map[string]any{"url": url}, nil)
}

// screenshot saves the whole page as a PNG at path.
func (b *browser) screenshot(path string) {
	b.t.Helper()
	var shot struct{ Data string }
	b.call("Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true}, &shot)
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func (b *browser) close() {
	b.in.Close() // Chromium exits when its command pipe closes
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		b.cmd.Process.Kill()
	}
	b.cmd.Wait()
}

// The status page in a real browser, with the demo's agents: it loads
// from the daemon alone, shows every agent with its state and PID, its
// restart button (with the token from the URL) restarts the agent and
// the page then shows the new PID; without the token the button's
// refusal is shown and nothing restarts. The screenshot is in the test's
// artifact directory (go test -artifacts).
func TestStatusPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon and a browser")
	}
	chromiumPath(t)
	d := startDaemonWith(t, "-listen", "127.0.0.1:0", "-data", t.TempDir())
	agents := d.waitAgents(t, "the demo's collector running", func(a map[string]agentJSON) bool {
		return a["collector"].State == "running" && a["shipper"].State == "running"
	})
	b := newBrowser(t, 1400, 1100)

	// Without a token first: the refusal shows, the PID stays.
	b.navigate("http://" + d.addr + "/")
	b.waitUntil("every agent", fmt.Sprintf("document.body.dataset.loaded == %d && document.querySelectorAll('#agents tr').length == %d", len(agents), len(agents)), 20*time.Second)
	for name, a := range agents {
		var state, pid string
		b.eval(fmt.Sprintf("document.querySelector('tr[data-agent=%q] td.state').textContent", name), &state)
		b.eval(fmt.Sprintf("document.querySelector('tr[data-agent=%q] td.pid').textContent", name), &pid)
		if state == "" || a.State == "running" && pid == "" {
			t.Errorf("agent %s shows state %q pid %q; the API says %+v", name, state, pid, a)
		}
	}
	click := "document.querySelector('button[data-agent=\"collector\"][data-action=\"restart\"]').click()"
	b.eval(click, nil)
	b.waitUntil("the refusal", "document.getElementById('message').textContent.includes('401')", 10*time.Second)
	if now := d.agents(t)["collector"]; now.PID != agents["collector"].PID {
		t.Fatalf("the collector restarted without a token: PID %d, was %d", now.PID, agents["collector"].PID)
	}

	// With the token in the URL's fragment (never sent to the server).
	b.navigate("http://" + d.addr + "/#token=" + d.token(t))
	b.waitUntil("every agent", fmt.Sprintf("document.body.dataset.loaded == %d", len(agents)), 20*time.Second)
	b.eval(click, nil)
	was := agents["collector"].PID
	b.waitUntil("the collector's new PID", fmt.Sprintf(
		"(t => t != '' && t != '%d')(document.querySelector('tr[data-agent=\"collector\"] td.pid').textContent) && document.querySelector('tr[data-agent=\"collector\"] td.state').textContent == 'running'", was), 30*time.Second)
	var shown string
	b.eval("document.querySelector('tr[data-agent=\"collector\"] td.pid').textContent", &shown)
	if now := d.agents(t)["collector"]; fmt.Sprint(now.PID) != shown {
		t.Errorf("the page shows PID %s, the API %d", shown, now.PID)
	}
	b.waitUntil("the restart among the recent events", "[...document.querySelectorAll('#events tr')].some(r => r.textContent.includes('collector') && r.textContent.includes('restart requested'))", 10*time.Second)

	shot := filepath.Join(t.ArtifactDir(), "status-page.png")
	b.screenshot(shot)
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10000 {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	t.Logf("screenshot of the status page with the demo agents: %s", shot)
}

// BenchmarkStatusPageLoad loads the status page of a daemon running 100
// agents in headless Chromium: the page's own time from navigation to
// every agent's row drawn (the three API requests included), as
// ms/load; ns/op adds the browser's navigation and the DevTools round
// trips.
func BenchmarkStatusPageLoad(b *testing.B) {
	chromiumPath(b)
	dir := b.TempDir()
	agent, err := testagent.Build(dir)
	if err != nil {
		b.Fatal(err)
	}
	var cfg strings.Builder
	cfg.WriteString("agents:\n")
	for i := range 100 {
		cfg.WriteString(agentEntry(agent, fmt.Sprintf("agent-%03d", i), dir, "-lines", "5", "-text", "hello"))
	}
	path := filepath.Join(dir, "daemon.yaml")
	os.WriteFile(path, []byte(cfg.String()), 0o644)
	d := startDaemon(b, path, filepath.Join(dir, "data"))
	running := make([]string, 100)
	for i := range running {
		running[i] = fmt.Sprintf("agent-%03d", i)
	}
	d.waitAgents(b, "100 agents running", allRunning(running...))
	br := newBrowser(b, 1400, 1100)
	var total, api float64
	for b.Loop() {
		br.navigate("about:blank")
		br.navigate("http://" + d.addr + "/")
		var ms float64
		br.eval(`new Promise(done => { const check = () => document.body && document.body.dataset.loaded == "100" ? done(performance.now()) : setTimeout(check, 1); check(); })`, &ms)
		total += ms
		began := time.Now()
		if _, err := get("http://" + d.addr + "/agents?lines=3"); err != nil {
			b.Fatal(err)
		}
		api += float64(time.Since(began).Microseconds()) / 1000
	}
	b.ReportMetric(total/float64(b.N), "ms/load")
	b.ReportMetric(api/float64(b.N), "ms/agents-api")
}
