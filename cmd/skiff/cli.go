package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
)

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
