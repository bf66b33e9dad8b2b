//go:build unix && !linux

package main

import (
	"errors"
	"time"
)

// errNoProc is returned where the measurements need Linux's /proc.
var errNoProc = errors.New("process statistics need Linux /proc")

// memory is a process's resident set: now and its peak, and its
// anonymous part now.
type memory struct {
	RSS, HWM, Anon int64 // bytes
}

func readMemory(int) (memory, error)     { return memory{}, errNoProc }
func resetPeak(int) error                { return errNoProc }
func cpuTime(int) (time.Duration, error) { return 0, errNoProc }
func hostBusy() (time.Duration, error)   { return 0, errNoProc }
