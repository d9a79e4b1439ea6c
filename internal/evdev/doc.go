// Package evdev reads Linux input event devices (/dev/input/eventN) for an
// init that must notice a power button: the ACPI power button that Cloud
// Hypervisor's vm.power-button and QEMU's system_powerdown press reaches
// user space only as KEY_POWER on an evdev device (drivers button and evdev).
//
// A [Device] is a file descriptor for an event loop: opened O_RDONLY,
// O_NONBLOCK and O_CLOEXEC, readable when events are queued, read with
// [Device.Read] until it reports none. [PowerButtons] finds the devices that
// can report KEY_POWER by asking each one (EVIOCGBIT), not by its name.
//
// Decoding struct input_event is portable; opening and reading devices is
// Linux only.
package evdev
