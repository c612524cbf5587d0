// Command catalog is the Lambda function (provided.al2023, Function URL
// behind CloudFront) serving Skiff's catalog route group: /v2/, the catalog, tags/list, tokens and the operator API.
package main

import (
	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/lambdaweb"
)

func main() { lambdaweb.Main(httpapi.GroupCatalog) }
