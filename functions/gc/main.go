// Command gc is the scheduled garbage collector (provided.al2023, invoked
// by EventBridge Scheduler, no URL): each invocation goes on with the
// collection pass in progress from its checkpoint in the table.
package main

import "github.com/skiff-registry/skiff/internal/lambdagc"

func main() { lambdagc.Main() }
