// Package router is the WorkerRouter and its workers: the router owns the
// worker set (parallel_execution.max_workers, grown and shrunk live), checks
// that every worker still answers (health_check_interval) and replaces the
// ones that do not. Workers are its children, supervised by the strategy the
// router's props carry.
package router
