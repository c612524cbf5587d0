// Command blob is the Lambda function (provided.al2023, Function URL
// behind CloudFront) serving Skiff's blob route group: blobs and uploads (/v2/<name>/blobs/...).
package main

import (
	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/lambdaweb"
)

func main() { lambdaweb.Main(httpapi.GroupBlob) }
