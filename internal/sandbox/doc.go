// Package sandbox starts a program as PID 1 of new user, PID, mount, UTS and
// IPC namespaces on an ordinary Linux host, where it can do what an init
// does (mount, kill(-1), remount, reboot(2)) without reaching the host: the
// kernel confines each of those acts to namespaces owned by the new user
// namespace. `vminit sandbox`, the tests and the benchmark launch every PID 1
// through it.
//
// The new user namespace is created also when the caller is root, and its
// root is mapped to an unprivileged host uid (65534 for root, the caller's
// own uid otherwise), never to host uid 0: root inside a 0→0 map could still
// write the host's sysctls.
package sandbox
