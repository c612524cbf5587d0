// Package placeholder writes stand-in function zips, so the stack can be
// synthesized (tests, `make synth`) before the real functions are built.
// Each zip's bootstrap is a shell script that fails every invocation with
// a message saying what it is: deployed by mistake, it is obvious.
package placeholder

import (
	"archive/zip"
	"fmt"
	"os"
	"path/filepath"
)

// Script is the bootstrap of every placeholder zip.
const Script = `#!/bin/sh
echo "PLACEHOLDER Skiff function: this zip was made only to synthesize the CDK app; build the real functions (make functions) and deploy again" >&2
exit 1
`

// WriteIngest writes an ingest image context into dir: the repository's
// Dockerfile (dockerfile, its path) and Script as the skiff binary.
func WriteIngest(dir, dockerfile string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := os.ReadFile(dockerfile)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), b, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "skiff"), []byte(Script), 0o755)
}

// WriteZips writes <dir>/<name>.zip for each name, creating dir.
func WriteZips(dir string, names ...string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, name := range names {
		if err := writeZip(filepath.Join(dir, name+".zip")); err != nil {
			return fmt.Errorf("placeholder %s: %w", name, err)
		}
	}
	return nil
}

func writeZip(path string) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	zw := zip.NewWriter(f)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	h.SetMode(0o755) // Lambda runs bootstrap: it must be executable
	w, err := zw.CreateHeader(h)
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(Script)); err != nil {
		return err
	}
	return zw.Close()
}
