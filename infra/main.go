// Command infra is Skiff's CDK app: `npx cdk synth` (make synth) runs it.
package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/skiff-registry/skiff/infra/stacks"
)

func main() {
	defer jsii.Close()

	app := awscdk.NewApp(nil)
	stacks.AddNagChecks(app)

	props := &stacks.SkiffStackProps{StackProps: awscdk.StackProps{Env: env()}}
	// Deploy-time choices that are not configuration: `-c
	// skiff:functionsDir=DIR` points at other zips (make synth uses it for
	// placeholders), `-c skiff:originSecretVersion=ID` sends a rotated
	// origin secret (README.md, Rotating the origin secret).
	if dir, ok := app.Node().TryGetContext(jsii.String("skiff:functionsDir")).(string); ok {
		props.FunctionsDir = dir
	}
	if v, ok := app.Node().TryGetContext(jsii.String("skiff:originSecretVersion")).(string); ok {
		props.OriginSecretVersionID = v
	}
	// `-c skiff:ingest=true` adds the ingest service (make synth INGEST=1),
	// its image from `-c skiff:ingestDir=DIR` (default ../build/ingest).
	switch v := app.Node().TryGetContext(jsii.String("skiff:ingest")).(type) {
	case bool:
		props.Ingest = v
	case string:
		props.Ingest = v == "true" || v == "1"
	}
	if dir, ok := app.Node().TryGetContext(jsii.String("skiff:ingestDir")).(string); ok && props.Ingest {
		props.IngestDir = dir
	}
	stacks.NewSkiffStack(app, "Skiff", props)

	app.Synth(nil)
}

// env is nil: the stack is environment-agnostic, so one synthesized
// template deploys to any account and region (`cdk deploy` takes them from
// the CLI's credentials). Nothing in the stack looks anything up: region-
// specific parts (the us-east-1-only edge alarm) are CloudFormation
// conditions, not synth-time choices. Return an explicit
// &awscdk.Environment{Account: ..., Region: ...} to pin production stacks.
func env() *awscdk.Environment {
	return nil
}
