//go:build !linux

package rediscache_test

import "os/exec"

func setProcAttr(*exec.Cmd) {}
