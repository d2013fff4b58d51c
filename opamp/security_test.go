package opamp_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opamp-go/client/types"

	"github.com/tend-dev/tend/opamp"
	"github.com/tend-dev/tend/opamp/internal/fleet"
	"github.com/tend-dev/tend/supervisor"
)

// selfSigned is a certificate for 127.0.0.1 and the pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fleet test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// Over wss:// with a bearer token: a host with the server's CA and the
// token is reported; one without the token, or that does not trust the
// certificate, never gets in.
func TestTLSAndBearerToken(t *testing.T) {
	cert, pool := selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fleet.Server{Token: "s3cret"}
	if err := srv.Start(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(ctxTimeout(t, 5*time.Second)) })
	url := "wss://" + ln.Addr().String() + "/v1/opamp"
	secure := func(token string, roots *x509.CertPool) func(*opamp.Config) {
		return func(c *opamp.Config) {
			c.ServerURL, c.TLS = url, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
			if token != "" {
				c.Header = http.Header{"Authorization": {"Bearer " + token}}
			}
		}
	}
	good := newHost(t, agents(sleeper("a")), supervisor.Containment{Disabled: true})
	good.connect(t, "", secure("s3cret", pool))
	noToken := newHost(t, agents(sleeper("b")), supervisor.Containment{Disabled: true})
	noToken.connect(t, "", secure("", pool))
	wrongToken := newHost(t, agents(sleeper("c")), supervisor.Containment{Disabled: true})
	wrongToken.connect(t, "", secure("guess", pool))
	untrusting := newHost(t, agents(sleeper("d")), supervisor.Containment{Disabled: true})
	untrusting.connect(t, "", secure("s3cret", x509.NewCertPool()))

	if _, err := srv.Wait(ctxTimeout(t, 10*time.Second), "the host with the token", healthy(good, "a")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the others keep retrying meanwhile
	for _, h := range srv.Hosts() {
		if h.UID != good.uid {
			t.Errorf("host %s got in without the token or the CA", h.UID)
		}
	}
}

// The instance UID file is created once and read back the same; a file
// of something else is refused, naming it.
func TestInstanceUIDFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "instance-uid")
	first, err := opamp.InstanceUIDFile(path)
	if err != nil || first == (types.InstanceUid{}) {
		t.Fatalf("first: %v %x", err, first)
	}
	again, err := opamp.InstanceUIDFile(path)
	if err != nil || again != first {
		t.Fatalf("again: %v %x, want %x", err, again, first)
	}
	os.WriteFile(path, []byte("not a uid\n"), 0o640)
	if _, err := opamp.InstanceUIDFile(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("a bad file: %v", err)
	}
}
