package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudfront"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// edge5xxPercent is the share of viewer requests answered with a 5xx, over
// two consecutive 5-minute periods, that raises the distribution alarm.
const edge5xxPercent = 5

func newAlarms(scope constructs.Construct, s settings, fns []function, dist awscloudfront.Distribution, ing *ingest) {
	var action awscloudwatch.IAlarmAction
	if s.AlarmTopicArn != "" {
		action = awscloudwatchactions.NewSnsAction(awssns.Topic_FromTopicArn(scope, jsii.String("AlarmTopic"), jsii.String(s.AlarmTopicArn)))
	}
	notify := func(a awscloudwatch.Alarm) {
		if action != nil {
			a.AddAlarmAction(action)
			a.AddOkAction(action)
		}
	}

	period := &awscloudwatch.MetricOptions{Period: awscdk.Duration_Minutes(jsii.Number(5)), Statistic: jsii.String("Sum")}
	for _, f := range fns {
		name := titleCase(f.spec.name)
		// Any error is worth a look: the handlers turn every failure they
		// expect into an HTTP answer, so a Lambda error is a crash, a
		// timeout or an out-of-memory.
		notify(f.fn.MetricErrors(period).CreateAlarm(scope, jsii.String(name+"Errors"), &awscloudwatch.CreateAlarmOptions{
			AlarmDescription:   jsii.String("Skiff " + f.spec.name + " function: invocation errors (crash, timeout, out of memory) in 5 minutes"),
			Threshold:          jsii.Number(0),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
			EvaluationPeriods:  jsii.Number(1),
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		}))
		// Throttles mean clients got 429/503 from Lambda: the account's
		// concurrency is exhausted.
		notify(f.fn.MetricThrottles(period).CreateAlarm(scope, jsii.String(name+"Throttles"), &awscloudwatch.CreateAlarmOptions{
			AlarmDescription:   jsii.String("Skiff " + f.spec.name + " function: throttled invocations in 5 minutes"),
			Threshold:          jsii.Number(0),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
			EvaluationPeriods:  jsii.Number(1),
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		}))
	}

	if ing != nil {
		// The ingest service answers every failure it expects with a 4xx: a
		// 5xx is a crash or a store failure; an unhealthy task is one the
		// load balancer stopped sending uploads to.
		notify(ing.alb.Metrics().HttpCodeTarget(awselasticloadbalancingv2.HttpCodeTarget_TARGET_5XX_COUNT, period).
			CreateAlarm(scope, jsii.String("Ingest5xx"), &awscloudwatch.CreateAlarmOptions{
				AlarmDescription:   jsii.String("Skiff ingest service: 5xx answers in 5 minutes"),
				Threshold:          jsii.Number(0),
				ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
				EvaluationPeriods:  jsii.Number(1),
				TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
			}))
		notify(ing.service.MetricCpuUtilization(&awscloudwatch.MetricOptions{Period: awscdk.Duration_Minutes(jsii.Number(5))}).
			CreateAlarm(scope, jsii.String("IngestCpu"), &awscloudwatch.CreateAlarmOptions{
				AlarmDescription:   jsii.String("Skiff ingest service: CPU above 90% for 15 minutes (at its task limit, uploads slow down)"),
				Threshold:          jsii.Number(90),
				ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
				EvaluationPeriods:  jsii.Number(3),
				TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
			}))
	}

	// CloudFront publishes its metrics in us-east-1 only, and an alarm
	// watches metrics of its own region. The stack is environment-agnostic,
	// so the edge alarm is created under a condition: only when the stack
	// is deployed in us-east-1.
	inUsEast1 := awscdk.NewCfnCondition(scope, jsii.String("InUsEast1"), &awscdk.CfnConditionProps{
		Expression: awscdk.Fn_ConditionEquals(awscdk.Aws_REGION(), jsii.String("us-east-1")),
	})
	edge := awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace:     jsii.String("AWS/CloudFront"),
		MetricName:    jsii.String("5xxErrorRate"),
		DimensionsMap: &map[string]*string{"DistributionId": dist.DistributionId(), "Region": jsii.String("Global")},
		Period:        awscdk.Duration_Minutes(jsii.Number(5)),
		Statistic:     jsii.String("Average"),
	}).CreateAlarm(scope, jsii.String("Edge5xx"), &awscloudwatch.CreateAlarmOptions{
		AlarmDescription:   jsii.String("Skiff distribution: more than 5% of requests answered 5xx for 10 minutes (only in us-east-1, where CloudFront metrics live)"),
		Threshold:          jsii.Number(edge5xxPercent),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		EvaluationPeriods:  jsii.Number(2),
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	edge.Node().DefaultChild().(awscdk.CfnResource).CfnOptions().SetCondition(inUsEast1)
	notify(edge)
}
