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

// backendKind names the storage backend skiff runs on (SKIFF_IT_BACKEND).
type backendKind string

const (
	backendLocal backendKind = "local" // files + bbolt in a temp dir
	backendAWS   backendKind = "aws"   // S3 + DynamoDB: the stand-ins of scripts/with-standins.sh
)

// Set once by TestMain, read-only afterwards.
var (
	repoRoot   string      // absolute path of the module root
	serverBin  string      // the binary startRegistry runs
	serverKind flavour     // what serverBin is
	backend    backendKind // skiff's --backend
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

	backend = backendKind(os.Getenv("SKIFF_IT_BACKEND"))
	switch backend {
	case "", backendLocal:
		backend = backendLocal
	case backendAWS:
		// Never let a test run reach real AWS through the SDK's defaults.
		for _, v := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_DYNAMODB"} {
			if os.Getenv(v) == "" {
				fmt.Fprintf(os.Stderr, "integration: SKIFF_IT_BACKEND=aws needs %s (the stand-ins): run under "+
					"scripts/with-standins.sh, or start them: scripts/standins/s3.sh start; scripts/standins/dynalite.sh start; "+
					"eval \"$(scripts/standins/s3.sh env)\"; eval \"$(scripts/standins/dynalite.sh env)\"\n", v)
				return 1
			}
		}
		if os.Getenv("SKIFF_IT_DISTRIBUTION") != "" {
			fmt.Fprintf(os.Stderr, "integration: SKIFF_IT_BACKEND=aws and SKIFF_IT_DISTRIBUTION exclude each other\n")
			return 1
		}
		fmt.Fprintf(os.Stderr, "integration: SKIFF_IT_BACKEND=aws: skiff serve --backend aws --create-resources, "+
			"a fresh bucket and table per server (S3 %s, DynamoDB %s)\n",
			os.Getenv("AWS_ENDPOINT_URL_S3"), os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"))
	default:
		fmt.Fprintf(os.Stderr, "integration: SKIFF_IT_BACKEND=%q: want %q or %q\n", backend, backendLocal, backendAWS)
		return 1
	}

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
