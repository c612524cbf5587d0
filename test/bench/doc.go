// Package bench holds Skiff's cost benchmarks: requests per registry
// operation, write amplification and peak heap, measured through the real
// HTTP API (httpapi over registry over the storage adapters) for the AWS
// backend (S3 + DynamoDB stand-ins, counted with awsstore.Counter on the SDK
// clients) and for the embedded backend (counted on the storage ports).
//
// Run them with scripts/bench.sh, which starts the stand-ins it needs and
// prints a table against the budgets; or directly:
//
//	eval "$(scripts/standins/s3.sh env)"; eval "$(scripts/standins/dynalite.sh env)"
//	go test -run '^$' -bench . -benchtime=1x ./test/bench/
//
// Without the stand-ins the aws sub-benchmarks skip (SKIFF_REQUIRE_STANDINS=1
// makes that a failure). The package has no code outside its tests.
package bench
