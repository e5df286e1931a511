//go:build !linux

package main

import "errors"

// serveFloor needs epoll (floor.go).
func serveFloor(addr, backend string) error {
	return errors.New("the floor proxy runs on Linux only")
}
