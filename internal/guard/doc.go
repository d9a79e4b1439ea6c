// Package guard decides whether the running process may act as init:
// mount, disable Ctrl-Alt-Del, kill(-1), remount filesystems read-only and
// call reboot(2). Those acts are what an init is for in a VM, and ruinous
// anywhere else on a host, so every program of this repository that does
// them asks Check first, and the shutdown sequence asks again itself.
package guard
