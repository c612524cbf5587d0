package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsscheduler"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsschedulertargets"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/skiff-registry/skiff/internal/deploy"
)

// collectorEvery is how often EventBridge Scheduler invokes the gc
// function: each invocation goes on with the pass in progress for up to
// collectorTimeout, or finds nothing to do until GCInterval has passed
// since the last pass (one GetItem).
const (
	collectorEvery   = 15 // minutes
	collectorTimeout = 900
)

// collectorSpec is what the scheduled collector may do: read every item,
// mark, refresh and delete links, manifests, tags and content records,
// store its checkpoint (a settings item), list the bucket and delete the
// objects under blobs/. No secrets, no URL.
func collectorSpec() fnSpec {
	return fnSpec{
		name:        deploy.FunctionGC,
		description: "Skiff garbage collector: retention policies, links, copies, orphans; resumable, invoked by EventBridge Scheduler",
		// A pass holds the digests every link names: about 100 bytes
		// each, a few hundred MB at tens of millions of links.
		memory: 1024, timeout: collectorTimeout,
		tableActions:   []string{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:BatchGetItem"},
		updateKeys:     []string{repoKeyPrefix, contentKeyPrefix},
		objectActions:  []string{"s3:GetObject", "s3:DeleteObject"},
		objectPrefixes: []string{blobsPrefix},
		listBucket:     true,
		noSecrets:      true,
	}
}

// newCollector adds the gc function and its schedule.
func newCollector(scope constructs.Construct, s settings, st storage, sec secrets) awslambda.Function {
	env := serverEnv(s, st, sec)
	env[deploy.EnvGCInterval] = jsii.String(s.GCInterval.String())
	return newScheduled(scope, s, st, sec, collectorSpec(), env, "Gc",
		"Skiff garbage collection: goes on with the pass in progress, or starts one every GCInterval")
}

// newScheduled adds a function EventBridge Scheduler invokes every
// collectorEvery minutes (the collector, the sync), one at a time, with a
// schedule role that may invoke it alone.
func newScheduled(scope constructs.Construct, s settings, st storage, sec secrets, spec fnSpec, env map[string]*string, id, description string) awslambda.Function {
	// One at a time: the checkpoint's claim already says so; this keeps a
	// backlog of invocations from costing anything.
	fn := newLambda(scope, s, st, sec, spec, env, jsii.Number(1))
	// A role of its own rather than the stack-wide one CDK would make: it
	// may invoke this function only.
	invoker := awsiam.NewRole(scope, jsii.String(id+"ScheduleRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("scheduler.amazonaws.com"), nil),
		Description: jsii.String("Skiff " + spec.name + " schedule: invokes the " + spec.name + " function"),
	})
	awsscheduler.NewSchedule(scope, jsii.String(id+"Schedule"), &awsscheduler.ScheduleProps{
		Description: jsii.String(description),
		Schedule:    awsscheduler.ScheduleExpression_Rate(awscdk.Duration_Minutes(jsii.Number(collectorEvery))),
		Target: awsschedulertargets.NewLambdaInvoke(fn, &awsschedulertargets.ScheduleTargetBaseProps{
			Input: awsscheduler.ScheduleTargetInput_FromObject(map[string]any{"source": "skiff-" + spec.name + "-schedule"}),
			// The next tick retries: a failed invocation left a valid
			// checkpoint.
			RetryAttempts: jsii.Number(0),
			Role:          invoker,
		}),
	})
	return fn
}
