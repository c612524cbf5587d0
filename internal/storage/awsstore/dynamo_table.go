package awsstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// TableAPI is the part of *dynamodb.Client that CreateTable and DeleteTable
// use. Deployed tables come from infra/ (CDK); these helpers serve tests
// and `skiff serve` against a stand-in.
type TableAPI interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	DescribeTimeToLive(ctx context.Context, in *dynamodb.DescribeTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
	DeleteTable(ctx context.Context, in *dynamodb.DeleteTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteTableOutput, error)
}

// maxTableWait bounds how long CreateTable waits for ACTIVE; real tables
// take seconds, dynalite half a second.
const maxTableWait = 5 * time.Minute

// CreateTable creates table in the layout MetaStore needs (on-demand
// billing, string keys PK and SK) unless it exists, waits until it is
// ACTIVE, and turns on TTL on expiresAt (which expires upload sessions).
func CreateTable(ctx context.Context, client TableAPI, table string) error {
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   &table,
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrSK), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange},
		},
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create table %s: %w", table, err)
	}
	// The waiter's default first pause is 20s; a stand-in is ready in
	// well under a second.
	w := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 100 * time.Millisecond
		o.MaxDelay = 5 * time.Second
	})
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: &table}, maxTableWait); err != nil {
		return fmt.Errorf("wait for table %s: %w", table, err)
	}
	if err := enableTTL(ctx, client, table); err != nil {
		return fmt.Errorf("create table %s: %w", table, err)
	}
	return nil
}

// enableTTL turns on TTL on expiresAt unless it is on already (DynamoDB
// rejects enabling it twice). Stand-ins without TTL support answer
// UnknownOperationException, which is ignored: TTL only cleans up expired
// upload sessions and nothing depends on it. (dynalite 4 has no
// UpdateTimeToLive; its DescribeTimeToLive always says DISABLED.)
func enableTTL(ctx context.Context, client TableAPI, table string) error {
	desc, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &table})
	if unknownOperation(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("describe ttl: %w", err)
	}
	if d := desc.TimeToLiveDescription; d != nil && aws.ToString(d.AttributeName) == attrExpiresAt &&
		(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		return nil
	}
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: &table,
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(attrExpiresAt),
			Enabled:       aws.Bool(true),
		},
	})
	if err != nil && !unknownOperation(err) {
		return fmt.Errorf("enable ttl on %s: %w", attrExpiresAt, err)
	}
	return nil
}

// unknownOperation reports whether err says the endpoint does not
// implement the operation at all (a stand-in, not DynamoDB).
func unknownOperation(err error) bool {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode() {
	case "UnknownOperationException", "UnknownOperation", "NotImplemented":
		return true
	}
	return false
}

// DeleteTable deletes table without waiting for it to go; a missing table
// is not an error. Meant for test cleanup.
func DeleteTable(ctx context.Context, client TableAPI, table string) error {
	_, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: &table})
	var notFound *types.ResourceNotFoundException
	if err != nil && !errors.As(err, &notFound) {
		return fmt.Errorf("delete table %s: %w", table, err)
	}
	return nil
}
