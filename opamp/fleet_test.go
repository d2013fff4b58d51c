package opamp_test

import (
	"bytes"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/open-telemetry/opamp-go/protobufs"
	"github.com/tend-dev/tend/opamp"
	"github.com/tend-dev/tend/opamp/internal/fleet"
	"github.com/tend-dev/tend/supervisor"
)

// heapInUse is the heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// 200 hosts, each a Group of 5 sleep agents, report to one server: every
// host's five agents show healthy there. The heap the 200 connections
// add (the bridges and the server's side of them, both in this process)
// and the server's message rate are logged.
func TestTwoHundredHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 1,000 processes")
	}
	const hosts, perHost = 200, 5
	srv, addr := startServer(t, "127.0.0.1:0")
	srv.Heartbeat = 2 * time.Second // so that the idle rate shows in a few seconds
	var entries []string
	for i := range perHost {
		entries = append(entries, sleeper(fmt.Sprintf("agent-%d", i)))
	}
	config := agents(entries...)
	fleetOf := make([]*host, hosts)
	var wg sync.WaitGroup
	for i := range fleetOf {
		wg.Go(func() { fleetOf[i] = newHost(t, config, supervisor.Containment{Disabled: true}) })
	}
	wg.Wait()
	before := heapInUse()
	began := time.Now()
	for _, h := range fleetOf {
		h.connect(t, addr, func(c *opamp.Config) { c.Logger = logr.Discard() })
	}
	_, err := srv.Wait(ctxTimeout(t, 2*time.Minute), "every host's agents healthy", func(all []fleet.Host) bool {
		for _, h := range fleetOf {
			for i := range perHost {
				if !agentHealth(all, h, fmt.Sprintf("agent-%d", i)).GetHealthy() {
					return false
				}
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	reported := time.Since(began)
	startMessages := srv.Messages()
	after := heapInUse()
	idleFrom, idleMessages := time.Now(), srv.Messages()
	time.Sleep(4 * time.Second)
	idleRate := float64(srv.Messages()-idleMessages) / time.Since(idleFrom).Seconds()
	t.Logf("%d hosts x %d agents all reported in %v with %d messages; heap per connection (bridge and server side) %.1f KiB; idle message rate %.1f/s (heartbeat 2s)",
		hosts, perHost, reported.Round(time.Millisecond), startMessages, float64(after-before)/hosts/1024, idleRate)
	if len(srv.Hosts()) != hosts {
		t.Fatalf("the server has %d hosts, want %d", len(srv.Hosts()), hosts)
	}
}

// The host heartbeats at the interval the server asks for (1s here),
// not its own (an hour): an idle host's messages keep coming.
func TestHeartbeatAtTheServersInterval(t *testing.T) {
	srv, addr := startServer(t, "127.0.0.1:0")
	srv.Heartbeat = time.Second
	h := newHost(t, agents(sleeper("a")), supervisor.Containment{Disabled: true})
	h.connect(t, addr, func(c *opamp.Config) { c.Heartbeat = time.Hour })
	if _, err := srv.Wait(ctxTimeout(t, 10*time.Second), "a healthy", healthy(h, "a")); err != nil {
		t.Fatal(err)
	}
	first := hostOf(srv.Hosts(), h).Messages
	if _, err := srv.Wait(ctxTimeout(t, 20*time.Second), "three heartbeats", func(all []fleet.Host) bool {
		return hostOf(all, h).Messages >= first+3
	}); err != nil {
		t.Fatal(err)
	}
}

// Over plain HTTP (polling at the heartbeat interval, the server cannot
// push) the host is reported and a pushed configuration arrives at the
// next poll and is applied.
func TestHTTPTransport(t *testing.T) {
	srv, addr := startServer(t, "127.0.0.1:0")
	h := newHost(t, agents(sleeper("a")), supervisor.Containment{Disabled: true})
	h.connect(t, addr, func(c *opamp.Config) { c.ServerURL, c.Heartbeat = "http://"+addr+"/v1/opamp", time.Second })
	if _, err := srv.Wait(ctxTimeout(t, 10*time.Second), "a healthy over HTTP", healthy(h, "a")); err != nil {
		t.Fatal(err)
	}
	hash, err := srv.Offer(h.uid, []byte(agents(sleeper("a"), sleeper("b"))))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Wait(ctxTimeout(t, 20*time.Second), "the offered config applied over HTTP", func(all []fleet.Host) bool {
		r := hostOf(all, h).Remote
		return bytes.Equal(r.GetLastRemoteConfigHash(), hash) && r.GetStatus() == protobufs.RemoteConfigStatuses_RemoteConfigStatuses_APPLIED && healthy(h, "b")(all)
	}); err != nil {
		t.Fatal(err)
	}
}
