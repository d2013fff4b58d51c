package edgedaemon_test

import (
	"context"
	"flag"
	"fmt"

	"github.com/tend-dev/tend/examples/edge-daemon/edgedaemon"
)

// A build of the daemon that links more passes an Extension to Main: its
// flags join the daemon's, and its Run serves beside the daemon with
// the Group and the config file (see the OpAMP module's edge-daemon).
func ExampleExtension() {
	var server string
	x := edgedaemon.Extension{
		Flags: func(fs *flag.FlagSet) { fs.StringVar(&server, "report-to", "", "where to report") },
		Run: func(ctx context.Context, h edgedaemon.Host) error {
			<-ctx.Done() // serve until the daemon shuts down
			return nil
		},
	}
	fs := flag.NewFlagSet("edge-daemon", flag.ContinueOnError)
	x.Flags(fs)
	fs.Parse([]string{"-report-to", "fleet.example:4320"})
	fmt.Println("reporting to", server) // edgedaemon.Main(x) would run the daemon with it

	// Output: reporting to fleet.example:4320
}
