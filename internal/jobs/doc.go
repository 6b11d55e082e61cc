// Package jobs drives durable jobs forward. A Runner claims jobs from the
// database with row leases (SELECT … FOR UPDATE SKIP LOCKED inside the
// store), hands each to the step function registered for its kind, and
// releases the lease, pass after pass until nothing is left to do or its
// time budget is spent.
//
// Any number of runners (panel cron ticks, `pvekeep worker`) may run at once
// against one database: a job is advanced by at most one of them at a time,
// and a runner that dies leaves its lease to expire, after which any other
// runner resumes the job from what the row says. Step functions are written
// so that running one twice leaves the same result (see docs/jobs.md).
package jobs
