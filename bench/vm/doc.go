// Command vm boots vminit as the init of a real Linux kernel under QEMU,
// shuts the VM down by each path a VMM offers, checks what the guest and the
// host saw, and measures it. It is the harness of `make vm`, `make vm-test`
// and of TestVM, which `make test` runs.
//
//	go run ./bench/vm demo [-machines microvm]   one VM, the demo process tree, the power button
//	go run ./bench/vm test [-machines microvm,q35] [-only 1,2] [-runs N]
//
// Setup is automatic and cached under .cache/vm (git ignores it): as root it
// installs qemu-system-x86, kmod, e2fsprogs and cpio with apt-get when
// missing; it fetches Debian's cloud kernel with apt-get download (the
// versioned linux-image-*-cloud-amd64 package that the linux-image-cloud-amd64
// metapackage depends on), unpacks it with dpkg -x and writes its
// modules.dep with depmod. Each run rebuilds vminit and the test workload
// (internal/testproc) and writes a newc initramfs: vminit as /init,
// /bin/testproc, /dev/console and /dev/null, and the modules the scenarios load (virtio
// mmio and pci, virtio_blk, virtio_console, button, evdev, vsock) with a
// modules.dep of their own.
//
// QEMU runs under TCG (no KVM here), one VM at a time, with -no-reboot, the
// serial console on a pipe (each line timed on arrival and kept in
// console.log) and QMP on a Unix socket (send-key, system_powerdown, and the
// SHUTDOWN event's reason). microvm gets -device i8042 and
// tsc_early_khz=<host TSC kHz> tsc=reliable, without which it hangs at boot
// under TCG; q35 needs neither.
//
// The scenarios are those of issue 5: 1 Ctrl-Alt-Del, 2 power button, 3
// vminitctl on the host through a virtio-serial port (vminit.control=
// vport:NAME; QEMU's chardev socket is the unix:// address), 4 final=restart
// (guest-reset), 5 ext4 written without fsync and checked on the host
// (e2fsck -fn, dumpe2fs, debugfs, SHA-256), 6 workload exit status 7, 7 a
// SIGTERM ignorer killed at the grace, 8 vminitctl inside the guest over
// AF_VSOCK loopback (it is SIGTERMed by the shutdown it asked for, so it can
// show the accepted line and the first events, never the reboot event, which
// vminit's console shows); and two more: 9, a boot whose /dev/console the
// kernel cannot open (vminit must open it itself; microvm only), and 10, the
// virtio-serial transport alone (the host connects twice, the guest echoes).
// Scenarios that do not use the control channel boot with
// vminit.control=none: the default vsock listener needs a vsock transport,
// which these machines cannot give a guest. A boot passes when QEMU exits by
// itself with the expected SHUTDOWN reason, no "Kernel panic" is on the
// console, vminit's timeline is complete and error-free, and the scenario's
// own checks hold. Every run leaves its
// console, QEMU's arguments and stderr in .cache/vm/runs/.
package main
