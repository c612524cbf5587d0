package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Object key prefixes of the blob bucket (internal/registry/keys.go).
const (
	// blobsPrefix holds content-addressed blobs and large manifest bodies
	// (blobs/<alg>/<hex>) and blobs assembled by multipart uploads
	// (blobs/uploaded/<upload id>): the registry's data.
	blobsPrefix = "blobs/"
	// uploadsPrefix holds tail segments of live upload sessions
	// (uploads/<id>/<offset>-<claim>): scratch, dead once the session is.
	uploadsPrefix = "uploads/"
)

// counterKeyPrefix starts the partition key of every counter item (failed
// logins; internal/storage/awsstore/doc.go: "C#<key>").
const counterKeyPrefix = "C#"

// repoKeyPrefix and contentKeyPrefix start the partition keys of a
// repository's items (links, manifests, tags) and of the content records
// (internal/storage/awsstore/doc.go: "R#<repo>", "D#<2 hex>").
const (
	repoKeyPrefix    = "R#"
	contentKeyPrefix = "D#"
)

// ttlAttribute is the DynamoDB TTL attribute of upload sessions and
// counters (internal/storage/awsstore/doc.go: expiresAt, epoch seconds).
const ttlAttribute = "expiresAt"

type storage struct {
	bucket    awss3.Bucket
	logBucket awss3.Bucket
	table     awsdynamodb.Table
}

func newStorage(scope constructs.Construct, s settings) storage {
	destroy := s.removal == awscdk.RemovalPolicy_DESTROY

	// One bucket collects both the blob bucket's server access logs
	// (s3-access/) and the distribution's standard logs (cloudfront/).
	// CloudFront's standard logging writes with an ACL grant, so this
	// bucket keeps ACLs enabled (BUCKET_OWNER_PREFERRED: the bucket owner
	// still owns every object); S3 access logging is authorized by a bucket
	// policy (the @aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy flag).
	// SSE-S3 because S3 server access logging can't deliver to a bucket
	// whose default encryption is SSE-KMS.
	logBucket := awss3.NewBucket(scope, jsii.String("AccessLogs"), &awss3.BucketProps{
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        jsii.Bool(true),
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_PREFERRED,
		LifecycleRules: &[]*awss3.LifecycleRule{{
			Id:         jsii.String("expire-logs"),
			Expiration: awscdk.Duration_Days(jsii.Number(90)),
		}},
		RemovalPolicy:     s.removal,
		AutoDeleteObjects: jsii.Bool(destroy),
	})

	// The blob bucket. SSE-S3 rather than SSE-KMS: blob GETs are answered
	// with presigned URLs that clients fetch straight from S3, and layer
	// pulls are the registry's hottest path; with KMS every GET and every
	// multipart part is also a KMS request (cost, and the KMS request quota
	// shared with the account), the functions' roles need kms:Decrypt and
	// kms:GenerateDataKey, and a key policy becomes part of the access
	// model. Container layers gain nothing from a customer key unless an
	// auditor requires one: then add a key here and grant it to the
	// blob and manifest roles.
	// Versioning stays off: objects are content-addressed and never
	// rewritten with other content, so versions would only keep garbage.
	bucket := awss3.NewBucket(scope, jsii.String("Blobs"), &awss3.BucketProps{
		Encryption:             awss3.BucketEncryption_S3_MANAGED,
		BlockPublicAccess:      awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:             jsii.Bool(true),
		ObjectOwnership:        awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		ServerAccessLogsBucket: logBucket,
		ServerAccessLogsPrefix: jsii.String("s3-access/"),
		LifecycleRules: &[]*awss3.LifecycleRule{
			{
				// A multipart upload backs one upload session, which lives
				// 24 h. S3 counts whole days from initiation and acts at
				// the next midnight UTC, so an upload is aborted between 24
				// and 48 h after it began: never while its session lives.
				Id:                                  jsii.String("abort-incomplete-multipart-uploads"),
				AbortIncompleteMultipartUploadAfter: awscdk.Duration_Days(jsii.Number(1)),
			},
			{
				// Tail segments of sessions; a session is dead after 24 h,
				// so 2 days leaves a day of margin.
				Id:         jsii.String("expire-upload-scratch"),
				Prefix:     jsii.String(uploadsPrefix),
				Expiration: awscdk.Duration_Days(jsii.Number(2)),
			},
		},
		RemovalPolicy:     s.removal,
		AutoDeleteObjects: jsii.Bool(destroy),
	})

	table := awsdynamodb.NewTable(scope, jsii.String("Metadata"), &awsdynamodb.TableProps{
		PartitionKey:        &awsdynamodb.Attribute{Name: jsii.String("PK"), Type: awsdynamodb.AttributeType_STRING},
		SortKey:             &awsdynamodb.Attribute{Name: jsii.String("SK"), Type: awsdynamodb.AttributeType_STRING},
		BillingMode:         awsdynamodb.BillingMode_PAY_PER_REQUEST,
		TimeToLiveAttribute: jsii.String(ttlAttribute),
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true),
		},
		// The AWS-managed key (aws/dynamodb): visible in CloudTrail, no key
		// policy to maintain, and the functions need no kms permission.
		Encryption: awsdynamodb.TableEncryption_AWS_MANAGED,
		// A retained table is also protected from a console or API delete;
		// a DESTROY (dev) stack must be deletable.
		DeletionProtection: jsii.Bool(!destroy),
		RemovalPolicy:      s.removal,
	})

	return storage{bucket: bucket, logBucket: logBucket, table: table}
}
