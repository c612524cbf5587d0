// Command sync is the scheduled sync of the stored mirror rules
// (provided.al2023, invoked by EventBridge Scheduler, no URL): each
// invocation goes on with the run in progress from its checkpoint in the
// table, pulling from the upstreams into the registry's storage.
package main

import "github.com/skiff-registry/skiff/internal/lambdasync"

func main() { lambdasync.Main() }
