package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	args := os.Args[1:]
	if i := indexOf(args, "+"); i >= 0 || (len(args) > 0 && args[0] == "spawn") {
		os.Exit(parent(args))
	}
	if len(args) == 0 {
		fail("no role")
	}
	os.Exit(role(args[0], args[1:]))
}

// parent starts each "+"-separated role as a child, then waits for SIGTERM.
// "spawn N ROLE ARGS" starts N copies of one role.
func parent(args []string) int {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	if args[0] == "spawn" {
		n, _ := strconv.Atoi(args[1])
		for range n {
			start(args[2:]...)
		}
	} else {
		for len(args) > 0 {
			i := indexOf(args, "+")
			if i < 0 {
				i = len(args)
			}
			start(args[:i]...)
			args = args[min(i+1, len(args)):]
		}
	}
	<-term
	return 0
}

func role(name string, args []string) int {
	term := make(chan os.Signal, 1)
	arg := func(i int) string {
		if i >= len(args) {
			fail("role %s: missing argument %d", name, i+1)
		}
		return args[i]
	}
	switch name {
	case "exit": // exit N
		n, _ := strconv.Atoi(arg(0))
		return n
	case "selfkill": // killed by SIGKILL
		_ = unix.Kill(os.Getpid(), unix.SIGKILL)
		select {}
	case "forever": // default dispositions: SIGTERM kills it
		for {
			_ = unix.Pause()
		}
	case "graceful": // graceful DIR NAME: write DIR/NAME.ready; on SIGTERM, write DIR/NAME and exit 0
		signal.Notify(term, syscall.SIGTERM)
		mark(arg(0), arg(1)+".ready", "")
		<-term
		mark(arg(0), arg(1), "term")
		return 0
	case "ignore": // ignores SIGTERM
		signal.Ignore(syscall.SIGTERM)
		for {
			_ = unix.Pause()
		}
	case "stopped": // stopped DIR: stop itself; on SIGTERM (once continued) write DIR/stopped
		signal.Notify(term, syscall.SIGTERM)
		_ = unix.Kill(os.Getpid(), unix.SIGSTOP)
		<-term
		mark(arg(0), "stopped", "term")
		return 0
	case "daemon": // daemon DIR: double-fork; the orphan writes DIR/daemon on SIGTERM
		start("daemon-child", arg(0))
		return 0
	case "daemon-child":
		start("graceful", arg(0), "daemon")
		return 0
	case "slowfile": // slowfile DIR: on SIGTERM, take 1 s to write DIR/slow, then exit 0
		signal.Notify(term, syscall.SIGTERM)
		<-term
		f, err := os.Create(filepath.Join(arg(0), "slow.partial"))
		if err != nil {
			fail("%v", err)
		}
		for i := range 10 {
			fmt.Fprintf(f, "chunk %d\n", i)
			time.Sleep(100 * time.Millisecond)
		}
		fmt.Fprintln(f, "complete")
		f.Close()
		_ = os.Rename(filepath.Join(arg(0), "slow.partial"), filepath.Join(arg(0), "slow"))
		return 0
	case "grandparent": // grandparent ROLE ARGS: a child that starts ROLE as its child, then both wait
		start(args...)
		signal.Notify(term, syscall.SIGTERM)
		<-term
		return 0
	case "mounttmpfs": // mounttmpfs DIR: mount a tmpfs on DIR/mnt, write a file there, exit 0
		mnt := filepath.Join(arg(0), "mnt")
		if err := unix.Mount("tmpfs", mnt, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=1m"); err != nil {
			fail("mount tmpfs on %s: %v", mnt, err)
		}
		if err := os.WriteFile(filepath.Join(mnt, "data"), []byte("data\n"), 0o644); err != nil {
			fail("%v", err)
		}
		return 0
	case "ext4fill": // ext4fill DEV DIR MIB: mount ext4 DEV on DIR, write MIB MiB to DIR/data and its SHA-256 to DIR/marker, no fsync; print the hash; exit 0
		return ext4fill(arg(0), arg(1), arg(2))
	case "vportecho": // vportecho NAME N: answer N lines on virtio-serial port NAME with "echo LINE", logging what the port does
		return vportEcho(arg(0), arg(1))
	case "signals": // signals DIR TRIGGER: every signal to PID 1 but the triggers, then TRIGGER
		trigger, err := strconv.Atoi(arg(1))
		if err != nil {
			fail("bad trigger %q", arg(1))
		}
		// PID 1 catches the harmless signals only once the workload runs
		// (a few ms): before that, Go drops them unlogged.
		time.Sleep(300 * time.Millisecond)
		sent := 0
		for n := unix.Signal(1); n <= 64; n++ {
			switch n {
			case unix.SIGKILL, unix.SIGSTOP, unix.SIGTERM, unix.SIGINT, unix.SIGPWR:
				continue
			}
			if err := unix.Kill(1, n); err != nil {
				fail("kill(1, %d): %v", n, err)
			}
			sent++
		}
		time.Sleep(200 * time.Millisecond) // let PID 1 take them all
		if err := unix.Kill(1, 0); err != nil {
			fail("PID 1 is gone: %v", err)
		}
		mark(arg(0), "signals", strconv.Itoa(sent))
		signal.Notify(term, syscall.SIGTERM)
		_ = unix.Kill(1, unix.Signal(trigger))
		<-term
		return 0
	case "sigstate": // sigstate DIR: write SigIgn and SigBlk of /proc/self/status to DIR/sigstate
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			fail("%v", err)
		}
		var out []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "SigIgn:") || strings.HasPrefix(l, "SigBlk:") {
				out = append(out, l)
			}
		}
		mark(arg(0), "sigstate", strings.Join(out, "\n"))
		return 0
	case "zombies": // zombies N: start N children that exit at once, never wait for them, exit 0 (PID 1 inherits N zombies)
		n, _ := strconv.Atoi(arg(0))
		for range n {
			if _, err := syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{Files: []uintptr{0, 1, 2}}); err != nil {
				fail("fork: %v", err)
			}
		}
		return 0
	case "fdlist": // fdlist DIR: write the descriptors open in this process to DIR/fds
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			fail("%v", err)
		}
		var fds []string
		for _, e := range ents {
			target, _ := os.Readlink("/proc/self/fd/" + e.Name())
			fds = append(fds, e.Name()+" -> "+target)
		}
		mark(arg(0), "fds", strings.Join(fds, "\n"))
		return 0
	case "neglect": // neglect ROLE ARGS: survive SIGTERM, start ROLE as a child, never wait for it
		signal.Notify(term, syscall.SIGTERM) // caught and dropped: not inherited like SIG_IGN
		start(args...)
		for {
			_ = unix.Pause()
		}
	case "slowterm": // slowterm MS: on SIGTERM, take MS milliseconds, then exit 0
		ms, _ := strconv.Atoi(arg(0))
		signal.Notify(term, syscall.SIGTERM)
		<-term
		time.Sleep(time.Duration(ms) * time.Millisecond)
		return 0
	case "mountsrc": // mountsrc DIR SOURCE: mount a tmpfs named SOURCE (may be "") on DIR/mnt, write a file there, exit 0
		mnt := filepath.Join(arg(0), "mnt")
		if err := unix.Mount(arg(1), mnt, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=1m"); err != nil {
			fail("mount tmpfs on %s: %v", mnt, err)
		}
		if err := os.WriteFile(filepath.Join(mnt, "data"), []byte("data\n"), 0o644); err != nil {
			fail("%v", err)
		}
		return 0
	case "identity": // identity DIR: uid_map, CapEff, and opening a host sysctl for writing
		uidMap, _ := os.ReadFile("/proc/self/uid_map")
		status, _ := os.ReadFile("/proc/self/status")
		capEff := ""
		for _, l := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
				capEff = strings.TrimSpace(v)
			}
		}
		// Opened for writing and closed at once: never written.
		sysctl := "opened"
		if f, err := os.OpenFile("/proc/sys/vm/swappiness", os.O_WRONLY, 0); err != nil {
			sysctl = err.(*os.PathError).Err.(syscall.Errno).Error()
		} else {
			f.Close()
		}
		mark(arg(0), "identity", fmt.Sprintf("uid_map=%s\ncapeff=%s\nsysctl=%s\nuid=%d", strings.Join(strings.Fields(string(uidMap)), " "), capEff, sysctl, os.Getuid()))
		return 0
	case "ticker": // ticker DIR: every 20 ms an orphan for PID 1 that stamps its exit in DIR, until SIGTERM
		signal.Notify(term, syscall.SIGTERM)
		signal.Ignore(syscall.SIGCHLD) // the kernel reaps the intermediate children
		for {
			select {
			case <-term:
				return 0
			case <-time.After(20 * time.Millisecond):
				start("orphan", "exitstamp", arg(0))
			}
		}
	case "orphan": // orphan ROLE ARGS: start ROLE and exit, leaving it to PID 1
		start(args...)
		return 0
	case "exitstamp": // exitstamp DIR: write CLOCK_MONOTONIC to DIR/stamp-PID, and exit at once
		var ts unix.Timespec
		unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		mark(arg(0), fmt.Sprintf("stamp-%d", os.Getpid()), strconv.FormatInt(ts.Nano(), 10))
		return 0
	case "dirty-exec": // dirty-exec ARGV...: exec ARGV ignoring signals 10, 34, 50 and blocking 12, 40
		signal.Ignore(syscall.Signal(10), syscall.Signal(50))
		runtime.LockOSThread()
		ign := [5]uint64{1} // struct sigaction: SIG_IGN, no flags
		if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, 34, uintptr(unsafe.Pointer(&ign)), 0, 8, 0, 0); e != 0 {
			fail("ignore 34: %v", e)
		}
		block := uint64(1<<(12-1) | 1<<(40-1))
		if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_BLOCK, uintptr(unsafe.Pointer(&block)), 0, 8, 0, 0); e != 0 {
			fail("block: %v", e)
		}
		fail("exec %s: %v", arg(0), unix.Exec(arg(0), args, os.Environ()))
	}
	fail("unknown role %q", name)
	return 2
}

// start runs another role as a child, never waited for: PID 1 reaps it.
func start(args ...string) {
	argv := append([]string{"testproc"}, args...)
	exe, err := os.Executable() // not /proc/self/exe, which would name the process "exe"
	if err != nil {
		fail("%v", err)
	}
	if _, err := syscall.ForkExec(exe, argv, &syscall.ProcAttr{
		Env: os.Environ(), Files: []uintptr{0, 1, 2},
	}); err != nil {
		fail("start %v: %v", args, err)
	}
}

func mark(dir, name, content string) {
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		fail("%v", err)
	}
}

func indexOf(args []string, s string) int {
	for i, a := range args {
		if a == s {
			return i
		}
	}
	return -1
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "testproc: "+format+"\n", a...)
	os.Exit(99)
}

// ext4fill mounts an ext4 filesystem, writes a file of known content and a
// marker holding its SHA-256, without fsync, prints the hash
// ("ext4fill sha256=HEX") and returns at once: the VM test shuts the VM down
// while all of it is still dirty in the page cache, and checks the disk on
// the host.
func ext4fill(dev, dir, mib string) int {
	n, err := strconv.Atoi(mib)
	if err != nil || n <= 0 {
		fail("bad size %q", mib)
	}
	for i := 0; ; i++ { // the driver may still be creating the device node
		if _, err := os.Stat(dev); err == nil || i == 500 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fail("%v", err)
	}
	if err := unix.Mount(dev, dir, "ext4", 0, ""); err != nil {
		fail("mount %s on %s: %v", dev, dir, err)
	}
	f, err := os.Create(filepath.Join(dir, "data"))
	if err != nil {
		fail("%v", err)
	}
	h := sha256.New()
	block := make([]byte, 1<<20)
	for i := range n {
		// Every 8 bytes differ, and every MiB differs from the others, so a
		// block written to the wrong place changes the hash.
		for j := 0; j < len(block); j += 8 {
			binary.LittleEndian.PutUint64(block[j:], uint64(i)<<32|uint64(j)^0x9e3779b97f4a7c15)
		}
		h.Write(block)
		if _, err := f.Write(block); err != nil {
			fail("write: %v", err)
		}
	}
	if err := f.Close(); err != nil {
		fail("close: %v", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	mark(dir, "marker", sum+"\n")
	fmt.Printf("ext4fill sha256=%s\n", sum)
	return 0
}

// vportEcho finds the virtio-serial port called name the way an init without
// udev must (/sys/class/virtio-ports/*/name; /dev/virtio-ports/NAME is a
// udev symlink), then answers n lines with "echo LINE", printing every
// poll(2) and read(2) result, so that the VM test sees how the port behaves
// when the host connects, writes and goes away.
func vportEcho(name, count string) int {
	n, _ := strconv.Atoi(count)
	dev := ""
	for i := 0; dev == "" && i < 500; i++ {
		dirs, _ := filepath.Glob("/sys/class/virtio-ports/*")
		for _, d := range dirs {
			if b, err := os.ReadFile(filepath.Join(d, "name")); err == nil && strings.TrimSpace(string(b)) == name {
				dev = "/dev/" + filepath.Base(d)
			}
		}
		if dev == "" {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if dev == "" {
		fail("no virtio-serial port named %s", name)
	}
	_, symErr := os.Stat("/dev/virtio-ports/" + name)
	fmt.Printf("vportecho: port %s is %s (/dev/virtio-ports/%s: %v)\n", name, dev, name, symErr)
	fd, err := unix.Open(dev, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		fail("open %s: %v", dev, err)
	}
	_, err = unix.Write(fd, []byte("before the host connected\n"))
	fmt.Printf("vportecho: write before the host connected: %v\n", err)
	var line []byte
	buf := make([]byte, 4096)
	for answered := 0; answered < n; {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		_, err := unix.Poll(pfd, 30000)
		if err == unix.EINTR {
			continue
		}
		k, rerr := unix.Read(fd, buf)
		fmt.Printf("vportecho: poll revents=%#x; read %d %v\n", pfd[0].Revents, k, rerr)
		if k == 0 && rerr == nil || rerr == unix.EAGAIN {
			time.Sleep(50 * time.Millisecond) // host not connected: POLLHUP stays set
			continue
		}
		if rerr != nil {
			fail("read: %v", rerr)
		}
		for _, c := range buf[:k] {
			if c != '\n' {
				line = append(line, c)
				continue
			}
			_, werr := unix.Write(fd, []byte("echo "+string(line)+"\n"))
			fmt.Printf("vportecho: answered %q: %v\n", line, werr)
			line = line[:0]
			answered++
		}
	}
	return 0
}
