// Command manifest is the Lambda function (provided.al2023, Function URL
// behind CloudFront) serving Skiff's manifest route group: manifests and referrers (/v2/<name>/manifests/*, /v2/<name>/referrers/*).
package main

import (
	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/lambdaweb"
)

func main() { lambdaweb.Main(httpapi.GroupManifest) }
