package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
)

// parseArgs parses flags wherever they appear among the positional
// arguments (`skiff policy set mirror/ --index-children=none` as well as
// flags first), which the flag package alone stops at. It returns the
// positional arguments in order.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// A "--" ends the flags: everything after it is positional.
		if consumed := args[:len(args)-len(rest)]; len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// registryURL checks a --registry value: an http or https URL of the
// server, without a path.
func registryURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("--registry %q must be the server's URL with its scheme, e.g. http://127.0.0.1:5000", s)
	}
	if strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
		return "", fmt.Errorf("--registry %q must not have a path or query; give only scheme and host, e.g. http://127.0.0.1:5000", s)
	}
	return u.Scheme + "://" + u.Host, nil
}

// localOperator names the person running the CLI, as user@host.
func localOperator(getenv func(string) string) string {
	user := getenv("USER")
	if user == "" {
		user = getenv("USERNAME")
	}
	if user == "" {
		user = "unknown"
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return user + "@" + host
}

// printJSON writes v indented, for --json.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// usageError is a command-line mistake: the command's usage is printed
// with it.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// explainUsage prints usage for a command-line mistake and passes err on;
// -h/--help is not an error.
func explainUsage(err error, usage string, stdout, stderr io.Writer) error {
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return nil
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprint(stderr, usage)
	}
	return err
}
