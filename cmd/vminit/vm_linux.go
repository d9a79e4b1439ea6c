package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vminit/vminit/internal/evdev"
	"github.com/vminit/vminit/internal/event"
	"github.com/vminit/vminit/internal/kmod"
	"github.com/vminit/vminit/vsockraw"
)

// What PID 1 does only in a VM: the hardware of a sandbox is the host's.

// loadModules loads vminit.modules and their dependencies from the running
// kernel's modules directory. Nothing here is fatal: a workload that needs a
// missing driver fails on its own, with the reason logged here first.
func (p *pid1) loadModules() {
	if len(p.cfg.modules) == 0 {
		return
	}
	dir, err := kmod.Dir()
	if err != nil {
		p.emit(event.Event{Kind: event.Error, Step: "modules", Level: "ERROR", Err: err.Error()})
		return
	}
	start := time.Now()
	results, err := kmod.Load(dir, p.cfg.modules)
	if err != nil {
		p.emit(event.Event{Kind: event.Error, Step: "modules", Level: "ERROR", Err: err.Error()})
	}
	var present []string
	for _, r := range results {
		switch r.Status {
		case kmod.Loaded:
			present = append(present, r.Name)
		case kmod.AlreadyLoaded, kmod.Builtin:
			present = append(present, fmt.Sprintf("%s(%s)", r.Name, r.Status))
		case kmod.Failed:
			p.emit(event.Event{Kind: event.Error, Step: "modules", Level: "ERROR", Err: fmt.Sprintf("%s: %v", r.Name, r.Err)})
		default: // missing, skipped
			p.log.Warn("module "+r.Status.String(), "module", r.Name, "err", r.Err)
		}
	}
	if len(present) > 0 {
		p.log.Info("modules loaded", "modules", strings.Join(present, ","), "took", event.Round(time.Since(start)))
	}
}

// watchPowerButtons adds every input device that reports KEY_POWER to the
// loop. It runs before ready is reported, so that a VMM's power button
// pressed as soon as the guest says it is ready is seen. Devices that appear
// later (a driver loaded by the workload) are not watched.
func (p *pid1) watchPowerButtons() {
	devs, err := evdev.PowerButtons("/dev/input")
	if err != nil {
		p.log.Warn("power button", "err", err)
	}
	for _, d := range devs {
		if err := p.loop.Add(d.Fd(), unix.EPOLLIN, p.powerButton(d)); err != nil {
			p.emit(event.Event{Kind: event.Error, Step: "power_button", Level: "ERROR", Err: err.Error()})
			d.Close()
			continue
		}
		p.log.Info("watching the power button", "path", d.Path(), "name", d.Name())
	}
}

// powerButton returns the loop handler of one device: a KEY_POWER press is
// a shutdown request; a device that fails or hangs up is dropped.
func (p *pid1) powerButton(d *evdev.Device) func(uint32) {
	var evs []evdev.Event
	return func(events uint32) {
		var err error
		evs, err = d.Read(evs)
		for _, e := range evs {
			if e.Pressed(evdev.KeyPower) && !p.seq.Start("power_button") {
				p.log.Info("shutdown already under way", "source", "power_button", "phase", p.seq.Phase())
			}
		}
		if err != nil || events&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			p.log.Warn("power button gone", "path", d.Path(), "err", err)
			_ = p.loop.Remove(d.Fd())
			d.Close()
		}
	}
}

// portWait bounds the wait for a virtio-serial port named in the control
// addresses.
const portWait = 2 * time.Second

// resolvePorts points each vport:NAME control address at the device that
// carries NAME. /dev/virtio-ports/NAME is a symlink that udev makes, and a
// microVM has no udev: the name is in /sys/class/virtio-ports/vportNpM/name,
// the device is /dev/vportNpM. The driver adds ports after its probe, as the
// host announces them, so a port can appear a little after virtio_console
// is loaded: each is waited for, up to portWait, before the control server
// opens it (and before ready).
func (p *pid1) resolvePorts() {
	for i, a := range p.cfg.control {
		name, ok := strings.CutPrefix(a.Path, "/dev/virtio-ports/")
		if a.Kind != vsockraw.Port || !ok {
			continue
		}
		start := time.Now()
		dev, err := findPort(name, start.Add(portWait))
		if err != nil {
			p.emit(event.Event{Kind: event.Error, Step: "control", Level: "ERROR", Err: err.Error()})
			continue
		}
		p.cfg.control[i].Path = dev
		p.log.Info("control: virtio-serial port", "name", name, "device", dev, "waited", event.Round(time.Since(start)))
	}
}

// findPort returns the device of the virtio-serial port called name,
// polling until deadline: boot, before the loop runs, is the one place
// where PID 1 may wait like this.
func findPort(name string, deadline time.Time) (string, error) {
	for {
		if link := "/dev/virtio-ports/" + name; exists(link) {
			return link, nil
		}
		dirs, _ := filepath.Glob("/sys/class/virtio-ports/*")
		for _, d := range dirs {
			b, err := os.ReadFile(filepath.Join(d, "name"))
			if dev := "/dev/" + filepath.Base(d); err == nil && strings.TrimSpace(string(b)) == name && exists(dev) {
				return dev, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("vport:%s: no virtio-serial port of that name (in /sys/class/virtio-ports) after %v; is virtio_console loaded (vminit.modules)?", name, portWait)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
