package testagent_test

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/tend-dev/tend/internal/testagent"
)

func ExampleBuild() {
	dir, _ := os.MkdirTemp("", "testagent")
	defer os.RemoveAll(dir)
	bin, err := testagent.Build(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	out, err := exec.Command(bin, "-lines", "2", "-after", "1ms").Output()
	fmt.Print(string(out), err)
	// Output:
	// line 1
	// line 2
	// <nil>
}
