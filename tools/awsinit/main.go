// Command awsinit prepares what the Lambda functions expect to exist
// before their first cold start, on the AWS stand-ins (or an account):
//
//	awsinit -bucket NAME -table NAME [-key-file PATH]
//
// It creates the S3 bucket and the DynamoDB table when missing (as the CDK
// stack does in AWS) and, with -key-file, the token signing key file the
// functions share (SKIFF_AUTH_KEY_FILE): created once here, so concurrent
// cold starts never race to create it. Endpoints and credentials come from
// the SDK's usual environment (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_DYNAMODB,
// ...). Used by scripts/e2e-lambda.sh.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/skiff-registry/skiff/internal/backend"
	"github.com/skiff-registry/skiff/internal/config"
)

func main() {
	bucket := flag.String("bucket", "", "S3 bucket to create when missing")
	table := flag.String("table", "", "DynamoDB table to create when missing")
	keyFile := flag.String("key-file", "", "token signing key file to create when missing")
	flag.Parse()
	if err := run(context.Background(), *bucket, *table, *keyFile); err != nil {
		fmt.Fprintln(os.Stderr, "awsinit:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bucket, table, keyFile string) error {
	if bucket == "" || table == "" {
		return errors.New("-bucket and -table are required")
	}
	cfg := config.Config{Backend: config.BackendAWS, Bucket: bucket, Table: table, CreateResources: true, TokenKeyFile: keyFile}
	stores, err := backend.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer stores.Close()
	fmt.Printf("awsinit: bucket %s and table %s ready\n", bucket, table)
	if keyFile != "" {
		if _, err := backend.LoadTokenKey(ctx, cfg); err != nil {
			return err
		}
		fmt.Printf("awsinit: token signing key in %s\n", keyFile)
	}
	return nil
}
