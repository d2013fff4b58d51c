package edgedaemon

import (
	_ "embed"
	"net/http"
)

// page is the status page: one file with its styles and script inline,
// so that it works on a device with no internet. It reads the JSON API
// every two seconds and posts start, stop and restart with the bearer
// token the operator types in (or gives as #token=... in the URL).
//
//go:embed page.html
var page []byte

func servePage(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Nothing from elsewhere, and no framing by another site's page.
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.Write(page)
}
