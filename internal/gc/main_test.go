package gc_test

import (
	"flag"
	"os"
	"runtime"
	"strconv"
	"testing"
)

// TestMain lets more tests wait at once than there are CPUs: most of them
// sleep through grace periods and link windows, and with -parallel at its
// default (GOMAXPROCS) a 2-core machine runs their sleeps two by two. An
// explicit -parallel is left alone.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.parallel"); f != nil && f.Value.String() == strconv.Itoa(runtime.GOMAXPROCS(0)) {
		_ = f.Value.Set("8")
	}
	os.Exit(m.Run())
}
