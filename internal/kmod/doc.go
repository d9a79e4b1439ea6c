// Package kmod loads kernel modules the way modprobe would, for an init that
// has no modprobe: vminit.modules=virtio_blk,button,evdev on a distribution
// kernel that ships drivers as modules.
//
// It is for PID 1 of a VM, early in boot, with /proc and /sys mounted. The
// dependencies come from modules.dep in the modules directory
// (/lib/modules/RELEASE), which `depmod -b ROOT RELEASE` writes; modules.builtin,
// when present, tells a built-in driver from a missing one. Each module is
// loaded once, after its dependencies, with finit_module(2).
//
// What it promises:
//   - A missing module, a missing modules.dep or a failed load is reported in
//     the results, never fatal, and never stops the other modules; a module
//     whose dependency failed is skipped, with the dependency named.
//   - A module that is already loaded (EEXIST) or built in counts as present.
//   - Parsing and ordering are portable and need no kernel; only [Load]
//     touches the system.
package kmod
