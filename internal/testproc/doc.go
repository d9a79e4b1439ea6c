// Command testproc is the workload of vminit's end-to-end tests: small,
// precise process behaviours (ignore SIGTERM, stop itself, double-fork, take
// a second to finish a file, signal PID 1...) that the tests start inside the
// sandbox. Results go to files in a directory the sandbox's root may write.
//
//	testproc ROLE [ARGS] [+ ROLE [ARGS]]...
//
// With several roles separated by "+", each runs as a child of the first
// process, which then waits for SIGTERM and exits 0.
package main
