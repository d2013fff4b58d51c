package procfs_test

import (
	"fmt"
	"os"

	"github.com/tend-dev/tend/internal/procfs"
)

func ExampleReadStat() {
	st, err := procfs.ReadStat(os.Getpid())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(st.Live(), st.PPID == os.Getppid())
	// Output: true true
}
