// Package e2e holds the whole-stack tests: they build the launcher and the
// services from this checkout, start the real stack (Redis, the services and
// HAProxy under process-compose) on free ports with a temporary state dir,
// and talk to it only through HAProxy. Without redis-server, haproxy or
// process-compose they skip, and under CI=true they fail. Beside them, the
// checkout's own files: haproxy.cfg and stack.env (config_test.go), and the
// docs, whose relative links must lead to tracked files (docs_test.go).
package e2e
