package main

// Regression tests for defects found by trying to break vminit's configuration (the break
// branch): each test names the defect it guards against.

import (
	"strings"
	"testing"
)

// kernelInitArgv returns the argv the kernel gives init for a command line,
// by the rule in Documentation/admin-guide/kernel-parameters.rst: "if it
// doesn't recognize a parameter and it doesn't contain a '.', the parameter
// gets passed to init: parameters with '=' go into init's environment, others
// are passed as command line arguments to init. Everything after '--' is
// passed as an argument to init." (init/main.c: unknown_bootoption puts them
// in argv_init, set_init_arg appends what follows "--".) known lists the
// parameters this kernel recognizes.
func kernelInitArgv(line string, known map[string]bool) []string {
	argv := []string{"/sbin/vminit"}
	words := strings.Fields(line)
	for i, w := range words {
		if w == "--" {
			return append(argv, words[i+1:]...)
		}
		name, _, hasVal := strings.Cut(w, "=")
		if known[name] || hasVal || strings.Contains(name, ".") {
			continue
		}
		argv = append(argv, w)
	}
	return argv
}

// TestBreakKernelBareWordBecomesWorkload: a bare word the kernel does not
// know (a typo, "splash", "single", a parameter of a driver that is not
// built in) reaches init's argv ahead of the words after "--". vminit takes
// the first non-flag argument as the workload, so it runs "splash
// /usr/bin/app --port 8080": status 127, and the VM powers off at boot.
// vminit reads /proc/cmdline anyway and could take the workload from what
// follows "--" there.
func TestBreakKernelBareWordBecomesWorkload(t *testing.T) {
	line := "console=ttyS0 reboot=k panic=-1 quiet splash vminit.grace=5s -- /usr/bin/app --port 8080"
	argv := kernelInitArgv(line, map[string]bool{"console": true, "reboot": true, "panic": true, "quiet": true})
	if strings.Join(argv[1:], " ") != "splash /usr/bin/app --port 8080" {
		t.Fatalf("kernel argv model: %q", argv)
	}
	c := defaultConfig()
	c.applyCmdline(line)
	c.applyArgs(argv[1:], onInit, false)
	if got := strings.Join(c.command, " "); got != "/usr/bin/app --port 8080" {
		t.Errorf("workload %q, want %q (what follows -- on the kernel command line)", got, "/usr/bin/app --port 8080")
	}
}

// TestBreakCmdlineQuotesAsTheKernel: splitCmdline claims to split "as the
// kernel does (lib/cmdline.c, next_arg)". next_arg strips only a quote that
// opens the parameter or its value (and the matching last character); a
// quote inside a value is kept. splitCmdline drops every quote.
func TestBreakCmdlineQuotesAsTheKernel(t *testing.T) {
	for in, want := range map[string]string{
		`vminit.env=MSG=say"hi"`:     `vminit.env=MSG=say"hi"`,
		`vminit.env=JSON={"a":1}`:    `vminit.env=JSON={"a":1}`,
		`vminit.env="K=a b" x`:       `vminit.env=K=a b|x`, // agrees today
		`"vminit.env=K=a b" x`:       `vminit.env=K=a b|x`, // agrees today
		`vminit.env=Q=it"s x"s fine`: `vminit.env=Q=it"s x"s|fine`,
	} {
		params, _ := splitCmdline(in)
		if got := strings.Join(params, "|"); got != want {
			t.Errorf("splitCmdline(%q) = %q, the kernel's next_arg gives %q", in, got, want)
		}
	}
}

// TestBreakCmdlineDashKeys: the kernel treats '-' and '_' in parameter names
// as equal (parameq), and vminit's own flags are spelled with '-'
// (--kill-timeout). vminit.kill-timeout=5s on the kernel command line is
// "unknown" and the default is kept.
func TestBreakCmdlineDashKeys(t *testing.T) {
	c := defaultConfig()
	w := c.applyCmdline("vminit.kill-timeout=5s vminit.shutdown-on-exit=false")
	if len(w) != 0 || c.shutdownOnExit || c.shutdown.KillTimeout.String() != "5s" {
		t.Errorf("warnings %v; kill timeout %v, shutdown on exit %v: want 5s and false", w, c.shutdown.KillTimeout, c.shutdownOnExit)
	}
}
