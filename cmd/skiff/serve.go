package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/skiff-registry/skiff/internal/config"
	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/registry"
	"github.com/skiff-registry/skiff/internal/storage/local"
)

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	cfg := config.Default()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address")
	fs.StringVar(&cfg.DataDir, "data", cfg.DataDir, "data directory of the embedded backend")
	fs.Int64Var(&cfg.MaxBody, "max-body", cfg.MaxBody, "maximum request body in bytes (0: no limit)")
	fs.TextVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))

	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	blobs, err := local.NewBlobStore(filepath.Join(cfg.DataDir, "blobs"))
	if err != nil {
		return fmt.Errorf("open blob store: %w", err)
	}
	meta, err := local.OpenMetaStore(filepath.Join(cfg.DataDir, "meta.db"))
	if err != nil {
		return fmt.Errorf("open metadata store: %w", err)
	}
	defer meta.Close()
	reg, err := registry.New(blobs, meta, registry.WithLogger(log))
	if err != nil {
		return err
	}
	api := httpapi.New(reg, httpapi.WithLogger(log), httpapi.WithMaxBody(cfg.MaxBody))

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 30 * time.Second}
	log.Info("serving", "addr", ln.Addr().String(), "backend", string(cfg.Backend), "data", cfg.DataDir)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
