module github.com/vminit/vminit

go 1.26.0

require (
	github.com/mdlayher/socket v0.8.0
	go.uber.org/multierr v1.11.0
	golang.org/x/sys v0.50.0
)

require (
	golang.org/x/net v0.61.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
)
