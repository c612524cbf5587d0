// Command placeholder-zips writes PLACEHOLDER manifest.zip, blob.zip,
// catalog.zip and gc.zip into the directory it is given (make synth uses it when the
// real functions are not built). They are not deployable: see
// internal/placeholder.
package main

import (
	"fmt"
	"os"

	"github.com/skiff-registry/skiff/infra/internal/placeholder"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: placeholder-zips DIR")
		os.Exit(2)
	}
	if err := placeholder.WriteZips(os.Args[1], "manifest", "blob", "catalog", "gc"); err != nil {
		fmt.Fprintln(os.Stderr, "placeholder-zips:", err)
		os.Exit(1)
	}
}
