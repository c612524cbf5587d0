// Package bench holds Skiff's cost benchmarks: requests per registry
// operation, write amplification and peak heap, measured through the real
// HTTP API (httpapi over registry over the storage adapters) for the AWS
// backend (S3 + DynamoDB stand-ins, counted with awsstore.Counter on the SDK
// clients) and for the embedded backend (counted on the storage ports).
//
// Run them with scripts/bench.sh, which prints a table against the
// budgets; or directly:
//
//	go test -run '^$' -bench . -benchtime=1x ./test/bench/
//
// The aws sub-benchmarks use the stand-ins the environment names, or start
// them (internal/testenv; without Node.js they skip, or fail under CI).
// The package has no code outside its tests.
package bench
