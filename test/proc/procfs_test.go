package proc

import (
	"os"
	"path/filepath"
	"testing"
)

func TestProcessesSeesThisOne(t *testing.T) {
	procs, err := Processes()
	if err != nil {
		t.Fatal(err)
	}
	self, ok := procs[os.Getpid()]
	if !ok {
		t.Fatalf("this process (%d) is not among %d listed", os.Getpid(), len(procs))
	}
	exe, _ := os.Executable()
	if self.PPID != os.Getppid() || self.Name != filepath.Base(os.Args[0]) {
		t.Errorf("got %+v, want parent %d and name %q (%s)", self, os.Getppid(), filepath.Base(os.Args[0]), exe)
	}
}

func TestDescendants(t *testing.T) {
	procs := map[int]Proc{
		1:  {PID: 1, PPID: 0, Name: "init"},
		10: {PID: 10, PPID: 1, Name: "dev"},
		11: {PID: 11, PPID: 10, Name: "etcd"},
		12: {PID: 12, PPID: 10, Name: "tollgate"},
		13: {PID: 13, PPID: 12, Name: "helper"},
		20: {PID: 20, PPID: 1, Name: "other"},
		21: {PID: 21, PPID: 20, Name: "other-child"},
		30: {PID: 30, PPID: 99, Name: "parent gone"},
	}
	got := Descendants(procs, 10)
	if len(got) != 3 || got[11].Name != "etcd" || got[12].Name != "tollgate" || got[13].Name != "helper" {
		t.Errorf("descendants of 10: %+v", got)
	}
	if got := Descendants(procs, 13); len(got) != 0 {
		t.Errorf("a leaf has descendants: %+v", got)
	}
}
