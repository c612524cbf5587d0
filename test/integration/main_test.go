package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// flavour names the server under test.
type flavour string

const (
	flavourSkiff        flavour = "skiff"
	flavourDistribution flavour = "distribution"
)

// Set once by TestMain, read-only afterwards.
var (
	repoRoot   string  // absolute path of the module root
	serverBin  string  // the binary startRegistry runs
	serverKind flavour // what serverBin is
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: %v\n", err)
		return 1
	}
	repoRoot = root

	if bin := os.Getenv("SKIFF_IT_DISTRIBUTION"); bin != "" {
		serverBin, serverKind = bin, flavourDistribution
		fmt.Fprintf(os.Stderr, "integration: SKIFF_IT_DISTRIBUTION set: testing CNCF distribution at %s, not skiff\n", bin)
		return m.Run()
	}

	tmp, err := os.MkdirTemp("", "skiff-it-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	serverBin, serverKind = filepath.Join(tmp, "skiff"), flavourSkiff
	args := []string{"build", "-o", serverBin}
	if raceEnabled {
		// A race in the server only shows under concurrent real traffic,
		// which is what these tests produce.
		args = append(args, "-race")
	}
	args = append(args, "./cmd/skiff")
	start := time.Now()
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: go %v failed: %v\n%s", args, err, out)
		return 1
	}
	fmt.Fprintf(os.Stderr, "integration: built skiff (race=%v) in %s\n", raceEnabled, time.Since(start).Round(time.Millisecond))
	return m.Run()
}
