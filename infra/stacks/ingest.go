package stacks

import (
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapplicationautoscaling"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudfront"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudfrontorigins"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecrassets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/skiff-registry/skiff/internal/deploy"
)

// The ingest service (SkiffStackProps.Ingest): `skiff serve --ingest`, the
// blob function's server without its 4 MiB body cap, on ECS Fargate
// (arm64), behind an internal Application Load Balancer that CloudFront
// reaches as a VPC origin. The viewer-request function sends every upload
// route there (viewer-request.js, its ingest switch); everything else stays
// on the functions, so pulls still go to S3 by presigned redirect and an
// idle registry pays for one small task.
//
// Who can reach it: the load balancer is internal, in subnets with no
// route from the internet, and its security group admits port 80 from the
// VPC's own range only, which is where CloudFront's VPC origin
// connects from (its service-managed ENIs in those subnets); the tasks
// admit the load balancer only. The origin secret is checked as the
// functions check it (internal/origin), so a request that got inside the
// VPC some other way is still refused. The tasks run in public subnets
// with a public address for their outbound calls (ECR, Secrets Manager,
// CloudWatch Logs), which costs less than a NAT gateway or interface
// endpoints; S3 and DynamoDB go through gateway endpoints (free), and no
// inbound rule admits anything from outside the VPC.
type ingest struct {
	origin  awscloudfront.IOrigin
	alb     awselasticloadbalancingv2.ApplicationLoadBalancer
	service awsecs.FargateService
	role    awsiam.Role
	logs    awslogs.LogGroup
	// container is the task's one container, whose realm is set once the
	// distribution exists (setRealm).
	container awsecs.ContainerDefinition
}

// Ingest sizing: a task streams bodies to S3 and hashes them (SHA-256 at
// several hundred MB/s per arm64 vCPU), holding at most a part buffer per
// upload in memory.
const (
	ingestCPU        = 512  // 0.5 vCPU
	ingestMemoryMiB  = 1024 // 1 GiB
	ingestCPUPercent = 60   // scale out above this average
	// ingestReadTimeout is how long CloudFront waits for the ingest's answer
	// (its default quota allows up to 60 s): a commit after a streamed body
	// is one S3 CompleteMultipartUpload.
	ingestReadTimeout = 60
	// ingestDrain lets uploads in flight finish when a task is replaced.
	ingestDrain = 120
)

// ingestCIDR is the ingest VPC's range, a literal so that the load
// balancer's one ingress rule names it (and cdk-nag can check it). It is a
// VPC of its own: nothing else is in it.
const ingestCIDR = "10.42.0.0/16"

// ingestOriginID is its origin in the distribution (viewer-request.js).
var ingestOriginID = originID(deploy.Ingest)

func newIngest(scope constructs.Construct, s settings, st storage, sec secrets) *ingest {
	vpc := awsec2.NewVpc(scope, jsii.String("IngestVpc"), &awsec2.VpcProps{
		IpAddresses: awsec2.IpAddresses_Cidr(jsii.String(ingestCIDR)),
		MaxAzs:      jsii.Number(2),
		NatGateways: jsii.Number(0),
		SubnetConfiguration: &[]*awsec2.SubnetConfiguration{
			{Name: jsii.String("tasks"), SubnetType: awsec2.SubnetType_PUBLIC, CidrMask: jsii.Number(24)},
			{Name: jsii.String("origin"), SubnetType: awsec2.SubnetType_PRIVATE_ISOLATED, CidrMask: jsii.Number(24)},
		},
		GatewayEndpoints: &map[string]*awsec2.GatewayVpcEndpointOptions{
			"S3":       {Service: awsec2.GatewayVpcEndpointAwsService_S3()},
			"DynamoDB": {Service: awsec2.GatewayVpcEndpointAwsService_DYNAMODB()},
		},
		// Rejected traffic only: the accepted flows are the uploads
		// themselves, logged by CloudFront already.
		FlowLogs: &map[string]*awsec2.FlowLogOptions{
			"Rejected": {
				Destination: awsec2.FlowLogDestination_ToS3(st.logBucket, jsii.String("vpc-flow/"), nil),
				TrafficType: awsec2.FlowLogTrafficType_REJECT,
			},
		},
	})

	albSG := awsec2.NewSecurityGroup(scope, jsii.String("IngestLoadBalancerSG"), &awsec2.SecurityGroupProps{
		Vpc:              vpc,
		Description:      jsii.String("Skiff ingest load balancer: HTTP from inside the VPC only (the CloudFront VPC origin ENIs)"),
		AllowAllOutbound: jsii.Bool(false),
	})
	albSG.AddIngressRule(awsec2.Peer_Ipv4(jsii.String(ingestCIDR)), awsec2.Port_Tcp(jsii.Number(80)),
		jsii.String("CloudFront VPC origin"), nil)
	alb := awselasticloadbalancingv2.NewApplicationLoadBalancer(scope, jsii.String("IngestLoadBalancer"), &awselasticloadbalancingv2.ApplicationLoadBalancerProps{
		Vpc:            vpc,
		InternetFacing: jsii.Bool(false),
		VpcSubnets:     &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_ISOLATED},
		SecurityGroup:  albSG,
		// A body that stalls this long is given up (the server's own body
		// timeout is shorter).
		IdleTimeout:             awscdk.Duration_Seconds(jsii.Number(120)),
		DropInvalidHeaderFields: jsii.Bool(true),
	})
	// No load balancer access log: its only client is CloudFront, whose
	// access log (the log bucket) has every request, and the tasks log one
	// JSON line per request (IngestLogs). ELB's own log delivery also
	// needs the region at synth time, which this environment-agnostic
	// stack doesn't have.

	taskSG := awsec2.NewSecurityGroup(scope, jsii.String("IngestTaskSG"), &awsec2.SecurityGroupProps{
		Vpc:              vpc,
		Description:      jsii.String("Skiff ingest tasks: the load balancer only; out to AWS APIs over HTTPS"),
		AllowAllOutbound: jsii.Bool(false),
	})
	taskSG.AddEgressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Tcp(jsii.Number(443)), jsii.String("AWS APIs (S3, DynamoDB, Secrets Manager, ECR, Logs)"), nil)
	taskSG.AddIngressRule(albSG, awsec2.Port_Tcp(jsii.Number(deploy.IngestPort)), jsii.String("the ingest load balancer"), nil)
	albSG.AddEgressRule(taskSG, awsec2.Port_Tcp(jsii.Number(deploy.IngestPort)), jsii.String("the ingest tasks"), nil)

	logs := awslogs.NewLogGroup(scope, jsii.String("IngestLogs"), &awslogs.LogGroupProps{
		Retention:     awslogs.RetentionDays_ONE_MONTH,
		RemovalPolicy: s.removal,
	})
	// The blob function's grants, nothing more: it serves the same routes.
	role := awsiam.NewRole(scope, jsii.String("IngestRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("ecs-tasks.amazonaws.com"), nil),
		Description: jsii.String("Skiff ingest tasks: the blob function's grants (the metadata table, the blobs/ and uploads/ prefixes, the two secrets)"),
	})
	grantStorage(role, blobSpec(), st, sec)

	task := awsecs.NewFargateTaskDefinition(scope, jsii.String("IngestTask"), &awsecs.FargateTaskDefinitionProps{
		Cpu:            jsii.Number(ingestCPU),
		MemoryLimitMiB: jsii.Number(ingestMemoryMiB),
		RuntimePlatform: &awsecs.RuntimePlatform{
			CpuArchitecture:       awsecs.CpuArchitecture_ARM64(),
			OperatingSystemFamily: awsecs.OperatingSystemFamily_LINUX(),
		},
		TaskRole: role,
	})
	env := serverEnv(s, st, sec)
	container := task.AddContainer(jsii.String("skiff"), &awsecs.ContainerDefinitionOptions{
		// Built from the repository: the linux/arm64 skiff binary that
		// `make functions` leaves next to the Dockerfile (IngestDir).
		Image: awsecs.ContainerImage_FromAsset(jsii.String(s.ingestDir), &awsecs.AssetImageProps{
			Platform: awsecrassets.Platform_LINUX_ARM64(),
		}),
		Command:                jsii.Strings("serve", "--ingest", "--addr", ":"+strconv.Itoa(deploy.IngestPort)),
		Environment:            &env,
		PortMappings:           &[]*awsecs.PortMapping{{ContainerPort: jsii.Number(deploy.IngestPort)}},
		Logging:                awsecs.LogDriver_AwsLogs(&awsecs.AwsLogDriverProps{StreamPrefix: jsii.String("ingest"), LogGroup: logs}),
		ReadonlyRootFilesystem: jsii.Bool(true),
		StopTimeout:            awscdk.Duration_Seconds(jsii.Number(ingestDrain)),
	})

	cluster := awsecs.NewCluster(scope, jsii.String("IngestCluster"), &awsecs.ClusterProps{Vpc: vpc})
	service := awsecs.NewFargateService(scope, jsii.String("IngestService"), &awsecs.FargateServiceProps{
		Cluster:           cluster,
		TaskDefinition:    task,
		DesiredCount:      jsii.Number(1),
		MinHealthyPercent: jsii.Number(100),
		AssignPublicIp:    jsii.Bool(true),
		VpcSubnets:        &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PUBLIC},
		SecurityGroups:    &[]awsec2.ISecurityGroup{taskSG},
		CircuitBreaker:    &awsecs.DeploymentCircuitBreaker{Rollback: jsii.Bool(true)},
	})
	scaling := service.AutoScaleTaskCount(&awsapplicationautoscaling.EnableScalingProps{
		MinCapacity: jsii.Number(1),
		MaxCapacity: jsii.Number(float64(s.ingestMaxTasks)),
	})
	scaling.ScaleOnCpuUtilization(jsii.String("Cpu"), &awsecs.CpuUtilizationScalingProps{
		TargetUtilizationPercent: jsii.Number(ingestCPUPercent),
	})

	listener := alb.AddListener(jsii.String("Http"), &awselasticloadbalancingv2.BaseApplicationListenerProps{
		Port:     jsii.Number(80),
		Protocol: awselasticloadbalancingv2.ApplicationProtocol_HTTP,
		Open:     jsii.Bool(false),
	})
	listener.AddTargets(jsii.String("Ingest"), &awselasticloadbalancingv2.AddApplicationTargetsProps{
		Port:     jsii.Number(deploy.IngestPort),
		Protocol: awselasticloadbalancingv2.ApplicationProtocol_HTTP,
		Targets:  &[]awselasticloadbalancingv2.IApplicationLoadBalancerTarget{service},
		HealthCheck: &awselasticloadbalancingv2.HealthCheck{
			Path:             jsii.String(deploy.HealthPath),
			HealthyHttpCodes: jsii.String("200"),
		},
		DeregistrationDelay: awscdk.Duration_Seconds(jsii.Number(ingestDrain)),
	})

	origin := awscloudfrontorigins.VpcOrigin_WithApplicationLoadBalancer(alb, &awscloudfrontorigins.VpcOriginWithEndpointProps{
		OriginId:       jsii.String(ingestOriginID),
		ProtocolPolicy: awscloudfront.OriginProtocolPolicy_HTTP_ONLY,
		HttpPort:       jsii.Number(80),
		ReadTimeout:    awscdk.Duration_Seconds(jsii.Number(ingestReadTimeout)),
		CustomHeaders:  originSecretHeader(s, sec),
	})
	return &ingest{origin: origin, alb: alb, service: service, role: role, logs: logs, container: container}
}

// setRealm pins the token realm the ingest service puts in its challenges
// to the distribution's own address when the stack has no custom domain:
// behind the load balancer, X-Forwarded-Proto says http, not the https
// viewers use. (The functions can't be given it: the distribution depends
// on them; it depends on the load balancer, not on the tasks.)
func (in *ingest) setRealm(s settings, dist awscloudfront.Distribution) {
	if s.CustomDomain != nil {
		return // serverEnv has it
	}
	in.container.AddEnvironment(jsii.String(deploy.EnvRealm),
		awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String("https://"), dist.DistributionDomainName(), jsii.String(deploy.TokenPath)}))
}

// blobSpec is the blob function's spec, whose grants the ingest gets.
func blobSpec() fnSpec {
	for _, spec := range fnSpecs {
		if spec.name == deploy.FunctionBlob {
			return spec
		}
	}
	panic("no blob function spec")
}
