package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vminit/vminit/internal/event"
)

// machine is a QEMU machine type and what the guest needs on it.
type machine struct {
	name    string
	args    []string // -machine and its devices
	cmdline []string // kernel parameters it needs
	modules []string // the virtio transport
	blk     string   // the virtio-blk device model
	serial  string   // the virtio-serial bus device model
}

// machines are the two the issue asks for. microvm under TCG needs the TSC
// frequency on the command line (added by vmArgs) and an i8042 for
// Ctrl-Alt-Del; q35 has both of its own.
var machines = []machine{
	{name: "microvm", args: []string{"-machine", "microvm", "-device", "i8042"}, modules: []string{"virtio_mmio"}, blk: "virtio-blk-device", serial: "virtio-serial-device"},
	{name: "q35", args: []string{"-machine", "q35"}, modules: []string{"virtio_pci"}, blk: "virtio-blk-pci", serial: "virtio-serial-pci"},
}

func machineNamed(name string) (machine, bool) {
	for _, m := range machines {
		if m.name == name {
			return m, true
		}
	}
	return machine{}, false
}

// vmConfig is one boot.
type vmConfig struct {
	machine  machine
	params   []string // vminit.* and other kernel parameters
	modules  []string // besides the machine's transport
	workload []string // after "--" on the kernel command line
	disk     string   // raw image for virtio-blk, or ""
	initrd   string   // instead of the env's
	vport    string   // name of a virtio-serial port backed by a Unix socket (vm.vportSock), or ""
	dir      string   // run directory: console log, QEMU's stderr
	echo     io.Writer
}

// vm is a running QEMU.
type vm struct {
	cfg   vmConfig
	cmd   *exec.Cmd
	start time.Time
	qmp   *qmp
	sock  string
	// vportSock is the Unix socket of the virtio-serial port: QEMU
	// listens, the host connects (vminitctl's unix:// address).
	vportSock string

	mu      sync.Mutex
	lines   []consoleLine
	changed chan struct{} // closed and replaced when a line arrives or QEMU exits
	exited  bool          // QEMU was reaped
	eof     bool          // and its console closed: every line is in
	exitAt  time.Duration
	waitErr error
	ioErr   error // reading the console or writing its log
}

// kernelCmdline returns the kernel command line of a boot.
func (e *env) kernelCmdline(cfg vmConfig) string {
	// reboot=k, as Firecracker boots: a restart resets through the keyboard
	// controller, which QEMU turns into its exit under -no-reboot (the
	// kernel's default order tried other ways first, and microvm then
	// rebooted the guest once in a few runs).
	p := []string{"console=ttyS0", "panic=-1", "reboot=k", "quiet"}
	if cfg.machine.name == "microvm" {
		p = append(p, fmt.Sprintf("tsc_early_khz=%d", e.tscKHz), "tsc=reliable")
	}
	p = append(p, cfg.machine.cmdline...)
	if mods := append(append([]string{}, cfg.machine.modules...), cfg.modules...); len(mods) > 0 {
		p = append(p, "vminit.modules="+strings.Join(mods, ","))
	}
	p = append(p, cfg.params...)
	if len(cfg.workload) > 0 {
		p = append(p, "--")
		p = append(p, cfg.workload...)
	}
	return strings.Join(p, " ")
}

// boot starts QEMU. The caller must call wait (or kill) to end it.
func (e *env) boot(cfg vmConfig) (*vm, error) {
	if err := os.MkdirAll(cfg.dir, 0o755); err != nil {
		return nil, err
	}
	// A short socket path: sun_path holds 108 bytes.
	sockDir, err := os.MkdirTemp("", "vminit-qmp-")
	if err != nil {
		return nil, err
	}
	v := &vm{cfg: cfg, sock: filepath.Join(sockDir, "qmp"), changed: make(chan struct{})}
	initrd := e.initrd
	if cfg.initrd != "" {
		initrd = cfg.initrd
	}
	args := []string{
		"-accel", "tcg", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-m", "512", "-smp", "1",
		"-kernel", e.kernel.vmlinuz, "-initrd", initrd, "-append", e.kernelCmdline(cfg),
		"-chardev", "stdio,id=con,signal=off", "-serial", "chardev:con",
		"-qmp", "unix:" + v.sock + ",server=on,wait=off",
	}
	args = append(args, cfg.machine.args...)
	if cfg.vport != "" {
		v.vportSock = filepath.Join(sockDir, "vport")
		args = append(args, "-device", cfg.machine.serial,
			"-chardev", "socket,id=vport,path="+v.vportSock+",server=on,wait=off",
			"-device", "virtserialport,chardev=vport,name="+cfg.vport)
	}
	if cfg.disk != "" {
		args = append(args, "-drive", "id=disk,file="+cfg.disk+",format=raw,if=none,cache=writeback",
			"-device", cfg.machine.blk+",drive=disk")
	}
	if err := os.WriteFile(filepath.Join(cfg.dir, "qemu.args"), []byte(strings.Join(append([]string{e.qemu}, args...), "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	stderr, err := os.Create(filepath.Join(cfg.dir, "qemu.stderr"))
	if err != nil {
		return nil, err
	}
	defer stderr.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	v.cmd = exec.Command(e.qemu, args...)
	v.cmd.Stdout, v.cmd.Stderr = w, stderr // *os.File: Wait returns at QEMU's exit, not at EOF
	v.start = time.Now()
	if err := v.cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	w.Close()
	go v.readConsole(r)
	go func() {
		err := v.cmd.Wait()
		at := time.Since(v.start)
		v.mu.Lock()
		v.exited, v.exitAt, v.waitErr = true, at, err
		v.broadcast()
		v.mu.Unlock()
		os.RemoveAll(sockDir)
	}()
	if v.qmp, err = dialQMP(v.sock, 10*time.Second); err != nil {
		v.kill()
		return nil, err
	}
	return v, nil
}

// broadcast wakes the waiters. v.mu must be held.
func (v *vm) broadcast() {
	close(v.changed)
	v.changed = make(chan struct{})
}

func (v *vm) readConsole(r *os.File) {
	defer r.Close()
	log, err := os.Create(filepath.Join(v.cfg.dir, "console.log"))
	if err != nil {
		v.mu.Lock()
		v.ioErr = err
		v.mu.Unlock()
		log = nil
	}
	defer func() {
		if log != nil {
			log.Close()
		}
	}()
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		s, err := br.ReadString('\n')
		if s != "" {
			at := time.Since(v.start)
			s = strings.TrimRight(s, "\r\n")
			if log != nil {
				fmt.Fprintf(log, "%9.3f %s\n", at.Seconds(), s)
			}
			if v.cfg.echo != nil {
				fmt.Fprintf(v.cfg.echo, "  %7.3fs | %s\n", at.Seconds(), s)
			}
			v.mu.Lock()
			v.lines = append(v.lines, consoleLine{at: at, text: s, ev: parseEvent(s)})
			v.broadcast()
			v.mu.Unlock()
		}
		if err != nil {
			v.mu.Lock()
			if err != io.EOF {
				v.ioErr = err
			}
			v.eof = true
			v.broadcast()
			v.mu.Unlock()
			return
		}
	}
}

var errExited = errors.New("QEMU exited")

// waitLine waits until a console line satisfies match, QEMU exits, or limit
// passes.
func (v *vm) waitLine(limit time.Duration, match func(consoleLine) bool) (consoleLine, error) {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for i := 0; ; {
		v.mu.Lock()
		for ; i < len(v.lines); i++ {
			if match(v.lines[i]) {
				l := v.lines[i]
				v.mu.Unlock()
				return l, nil
			}
		}
		eof, changed := v.eof, v.changed
		v.mu.Unlock()
		if eof {
			return consoleLine{}, errExited
		}
		select {
		case <-changed:
		case <-timer.C:
			return consoleLine{}, fmt.Errorf("not seen within %v", limit)
		}
	}
}

// waitEvent waits for vminit's event of a kind.
func (v *vm) waitEvent(limit time.Duration, kind event.Kind) (consoleLine, error) {
	l, err := v.waitLine(limit, func(l consoleLine) bool { return l.ev != nil && l.ev.Kind == kind })
	if err != nil {
		err = fmt.Errorf("vminit's %s event: %w", kind, err)
	}
	return l, err
}

// wait waits for QEMU to exit by itself; after limit it kills it and says
// so.
func (v *vm) wait(limit time.Duration) error {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		v.mu.Lock()
		done, changed := v.exited && v.eof, v.changed
		v.mu.Unlock()
		if done {
			break
		}
		select {
		case <-changed:
		case <-timer.C:
			v.kill()
			return fmt.Errorf("QEMU still running %v after it was asked to stop: killed", limit)
		}
	}
	if v.qmp != nil {
		v.qmp.Close()
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.waitErr != nil {
		return fmt.Errorf("QEMU: %v (stderr in %s)", v.waitErr, filepath.Join(v.cfg.dir, "qemu.stderr"))
	}
	return nil
}

// kill ends QEMU (our own child, by its pid) and waits for it.
func (v *vm) kill() {
	_ = v.cmd.Process.Kill()
	for {
		v.mu.Lock()
		done, changed := v.exited && v.eof, v.changed
		v.mu.Unlock()
		if done {
			break
		}
		<-changed
	}
	if v.qmp != nil {
		v.qmp.Close()
	}
}

// snapshot returns the console so far and when QEMU exited (0 if running).
func (v *vm) snapshot() ([]consoleLine, time.Duration) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]consoleLine(nil), v.lines...), v.exitAt
}
