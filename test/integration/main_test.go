package integration

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	backendAWS   backendKind = "aws"   // S3 + DynamoDB: the stand-ins of tools/standins
)

// Set once by TestMain, read-only afterwards.
var (
	repoRoot   string      // absolute path of the module root
	serverBin  string      // the binary startRegistry runs
	serverKind flavour     // what serverBin is
	backend    backendKind // skiff's --backend
	// external is the registry named by SKIFF_IT_REGISTRY, nil when every
	// test starts its own server.
	external *externalRegistry
)

// externalRegistry is an already-running registry the tests target instead
// of starting skiff (SKIFF_IT_REGISTRY, SKIFF_IT_USER, SKIFF_IT_PASSWORD).
type externalRegistry struct {
	host           string // host:port, plain HTTP
	user, password string // an admin; empty: the registry has no auth
}

// externalFromEnv reads SKIFF_IT_REGISTRY and its credentials; nil, nil
// when it is not set.
func externalFromEnv() (*externalRegistry, error) {
	host := os.Getenv("SKIFF_IT_REGISTRY")
	user, password := os.Getenv("SKIFF_IT_USER"), os.Getenv("SKIFF_IT_PASSWORD")
	if host == "" {
		if user != "" || password != "" {
			return nil, fmt.Errorf("SKIFF_IT_USER and SKIFF_IT_PASSWORD apply to SKIFF_IT_REGISTRY, which is not set")
		}
		return nil, nil
	}
	if h, port, err := net.SplitHostPort(host); err != nil || h == "" || port == "" || strings.Contains(host, "/") {
		return nil, fmt.Errorf("SKIFF_IT_REGISTRY=%q: want host:port (plain HTTP, no scheme)", host)
	}
	if (user == "") != (password == "") {
		return nil, fmt.Errorf("set both SKIFF_IT_USER and SKIFF_IT_PASSWORD (an admin of %s), or neither", host)
	}
	for _, v := range []string{"SKIFF_IT_BACKEND", "SKIFF_IT_DISTRIBUTION"} {
		if os.Getenv(v) != "" {
			return nil, fmt.Errorf("SKIFF_IT_REGISTRY and %s exclude each other: the registry under test is already running", v)
		}
	}
	return &externalRegistry{host: host, user: user, password: password}, nil
}

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

	if external, err = externalFromEnv(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: %v\n", err)
		return 1
	}
	if external != nil {
		// -short skips every test here: against a registry named on
		// purpose, that would pass without checking anything.
		flag.Parse()
		if testing.Short() {
			fmt.Fprintf(os.Stderr, "integration: SKIFF_IT_REGISTRY and -short exclude each other (-short skips every test)\n")
			return 1
		}
		auth := "no authentication"
		if external.user != "" {
			auth = "authentication on, admin " + external.user
		}
		fmt.Fprintf(os.Stderr, "integration: SKIFF_IT_REGISTRY=%s: testing that registry (%s), "+
			"each test under its own repository prefix; skiff is built for its CLI only\n", external.host, auth)
	}

	backend = backendKind(os.Getenv("SKIFF_IT_BACKEND"))
	switch backend {
	case "", backendLocal:
		backend = backendLocal
	case backendAWS:
		// Never let a test run reach real AWS through the SDK's defaults.
		for _, v := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_DYNAMODB"} {
			if os.Getenv(v) == "" {
				fmt.Fprintf(os.Stderr, "integration: SKIFF_IT_BACKEND=aws needs %s (the stand-ins): run under "+
					"go run ./tools/standins go test ./test/integration (make integration-aws does)\n", v)
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
