package main

import (
	"context"
	"fmt"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/skiff-registry/skiff/internal/policy"
	"github.com/skiff-registry/skiff/internal/storage/awsstore"
)

// stsTimeout bounds the caller-identity lookup: without STS (a stand-in
// endpoint, no network) the CLI falls back to user@host rather than wait.
const stsTimeout = 5 * time.Second

// openTable returns a policy Store writing straight to the DynamoDB table
// with the caller's own AWS credentials (the SDK's default chain;
// AWS_ENDPOINT_URL_DYNAMODB is honoured), and who the caller is: their
// ARN from STS GetCallerIdentity when that answers, else user@host marked
// as AWS credentials. IAM on the table is the authority on this path.
func openTable(ctx context.Context, table string, getenv func(string) string) (*policy.Store, string, error) {
	meta, who, err := openTableMeta(ctx, table, getenv)
	if err != nil {
		return nil, "", err
	}
	return policy.NewStore(meta), who, nil
}

// openTableMeta is openTable's table, for any kind of rule.
func openTableMeta(ctx context.Context, table string, getenv func(string) string) (*awsstore.MetaStore, string, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("load AWS configuration: %w", err)
	}
	store := awsstore.NewMetaStore(dynamodb.NewFromConfig(cfg), table)
	who := localOperator(getenv) + " (aws credentials)"
	stsCtx, cancel := context.WithTimeout(ctx, stsTimeout)
	defer cancel()
	id, err := sts.NewFromConfig(cfg, func(o *sts.Options) { o.RetryMaxAttempts = 1 }).GetCallerIdentity(stsCtx, &sts.GetCallerIdentityInput{})
	if err == nil && id.Arn != nil && *id.Arn != "" {
		who = *id.Arn
	}
	return store, who, nil
}

// ruleTarget opens where a rule command works: the table (meta) or a
// server's operator API (client), and who the change is by.
func ruleTarget(ctx context.Context, where policyArgs, getenv func(string) string) (meta *awsstore.MetaStore, client *operatorClient, who string, err error) {
	if where.table != "" {
		meta, who, err = openTableMeta(ctx, where.table, getenv)
		return meta, nil, who, err
	}
	cred, err := envCredentials(getenv)
	if err != nil {
		return nil, nil, "", err
	}
	return nil, newOperatorClient(where.registry, cred), localOperator(getenv), nil
}
