package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"

	"github.com/acme-payments/platform/internal/stackconfig"
)

// checkPorts tries to listen on every port the stack needs and reports each
// one that is taken, naming the variable that moves it and where to set it,
// so that nothing is started when the stack could not come up whole.
// fromEnv tells which variables the environment sets: those cannot be moved
// in localFile, which the environment overrides.
func checkPorts(ports []stackconfig.Port, localFile string, fromEnv func(name string) bool) error {
	where := func(name string) string {
		if fromEnv != nil && fromEnv(name) {
			return "in the environment, which sets it now (and overrides " + localFile + ")"
		}
		return "in " + localFile + " or in the environment"
	}
	var taken []string
	for _, p := range ports {
		addr := net.JoinHostPort(p.Host, strconv.Itoa(p.Port))
		ln, err := net.Listen("tcp", addr)
		switch {
		case err == nil:
		case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
			// A port below the first unprivileged one (1024 on Linux).
			taken = append(taken, fmt.Sprintf("port %d on %s needs privileges this user does not have (%v): set %s to a port from 1024 up %s",
				p.Port, p.Host, unwrapSyscall(err), p.Var, where(p.Var)))
			continue
		case errors.Is(err, syscall.EADDRINUSE) || p.HostVar == "":
			taken = append(taken, fmt.Sprintf("port %d on %s is not free (%v): set %s to another port %s",
				p.Port, p.Host, unwrapSyscall(err), p.Var, where(p.Var)))
			continue
		default: // not a taken port: most likely an address this machine does not have
			taken = append(taken, fmt.Sprintf("cannot listen on %s (%v): set %s to an address of this machine (127.0.0.1 keeps the platform local) %s",
				addr, unwrapSyscall(err), p.HostVar, where(p.HostVar)))
			continue
		}
		ln.Close()
	}
	if len(taken) == 0 {
		return nil
	}
	return errors.New(strings.Join(taken, "\n"))
}

func unwrapSyscall(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}
