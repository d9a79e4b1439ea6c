package kmod

import "time"

// Status is what became of one module.
type Status int

// The statuses of a Result.
const (
	Loaded        Status = iota + 1 // finit_module(2) succeeded
	AlreadyLoaded                   // finit_module(2) said EEXIST
	Builtin                         // built into the kernel: nothing to load
	Missing                         // not in modules.dep (or the file is gone)
	Failed                          // finit_module(2) or open(2) failed
	Skipped                         // a dependency is missing or failed
)

func (s Status) String() string {
	switch s {
	case Loaded:
		return "loaded"
	case AlreadyLoaded:
		return "already loaded"
	case Builtin:
		return "built in"
	case Missing:
		return "missing"
	case Failed:
		return "failed"
	case Skipped:
		return "skipped"
	}
	return "unknown"
}

// OK reports whether the module is present in the kernel after Load.
func (s Status) OK() bool { return s == Loaded || s == AlreadyLoaded || s == Builtin }

// Result is what Load did about one module.
type Result struct {
	Name      string
	Path      string // the file, when there was one to load
	Requested bool   // named in the request, not only needed by one
	Status    Status
	Err       error // why, for Missing, Failed and Skipped
	Took      time.Duration
}
