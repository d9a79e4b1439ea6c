// Package repo_test holds the repository's own rules, checked on every
// test run.
package repo_test

import (
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestOnePackageDoc: every package says, once, who it is for and what it
// promises.
func TestOnePackageDoc(t *testing.T) {
	dirs := map[string][]string{} // dir → files with a package doc
	pkgs := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != "." || d.Name() == "testdata" || d.Name() == "results") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		dir := filepath.Dir(path)
		pkgs[dir] = true
		if f.Doc != nil {
			dirs[dir] = append(dirs[dir], filepath.Base(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for dir := range pkgs {
		if docs := dirs[dir]; len(docs) != 1 {
			t.Errorf("%s: package doc in %d files %v, want exactly one (doc.go)", dir, len(docs), docs)
		}
	}
}

// forbidden lists packages the init binary must not depend on, and why.
var forbidden = map[string]string{
	"os/exec":                     "exec.Cmd.Wait would steal exit statuses from the reaper: PID 1 forks with syscall.ForkExec",
	"net":                         "Go's netpoller has no place in PID 1's epoll loop, and the binary stays lean",
	"net/http":                    "the binary stays lean",
	"os/user":                     "pulls in cgo lookups; an init has no user database to trust",
	"runtime/cgo":                 "the init is static (CGO_ENABLED=0)",
	"github.com/mdlayher/socket":  "runs on Go's netpoller: for the host tool, not PID 1",
	"gonum.org/v1/plot":           "benchmark plotting stays in bench/",
	"github.com/stretchr/testify": "test-only",
}

// TestInitDependencies keeps the init binary lean and its waits single-owned.
func TestInitDependencies(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	cmd := exec.Command("go", "list", "-deps", "./cmd/vminit")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if why, bad := forbidden[dep]; bad {
			t.Errorf("cmd/vminit depends on %s: %s", dep, why)
		}
	}
}

// TestCrossBuilds: the host tool and the portable packages build for macOS,
// and everything builds for arm64.
func TestCrossBuilds(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	for _, env := range [][]string{{"GOOS=darwin", "GOARCH=arm64"}, {"GOOS=linux", "GOARCH=arm64"}} {
		cmd := exec.Command("go", "build", "-o", os.DevNull, "./...")
		cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%v go build ./...: %v\n%s", env, err, out)
		}
	}
}
