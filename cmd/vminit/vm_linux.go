package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/vminit/vminit/internal/event"
	"github.com/vminit/vminit/internal/kmod"
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
