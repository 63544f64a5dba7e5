// Package addr holds the rules for the server addresses hoard takes, shared
// by the store packages (which validate their Options with them) and package
// stores (which checks the CACHE_*_HOST variables with them), so that every
// address follows one rule. Each check returns "" for a good value, else
// what the value must be.
package addr

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Wants of the checks.
const (
	WantHost     = "must be a host name or IP address, without a port or scheme"
	WantHostPort = "must be host:port with a port 1-65535"
	WantPort     = "must be a port number 1-65535"
)

// HasSpaceOrControl reports whether s holds a space, a control character or
// invalid UTF-8.
func HasSpaceOrControl(s string) bool {
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError {
			return true
		}
	}
	return false
}

// CheckHost checks a host name or IP address (an IPv6 address without
// brackets), without a port or scheme.
func CheckHost(h string) string {
	if h == "" || strings.ContainsAny(h, "/@?#[]") || HasSpaceOrControl(h) {
		return WantHost
	}
	if strings.Contains(h, ":") {
		if _, err := netip.ParseAddr(h); err != nil {
			return WantHost // a port, or a malformed IPv6 address
		}
	}
	return ""
}

// CheckPort checks a TCP port number.
func CheckPort(p int) string {
	if p < 1 || p > 65535 {
		return WantPort
	}
	return ""
}

// CheckHostPort checks a host:port address ([v6]:port for IPv6).
func CheckHostPort(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil || CheckHost(host) != "" {
		return WantHostPort
	}
	if n, err := strconv.Atoi(port); err != nil || CheckPort(n) != "" || port != strconv.Itoa(n) {
		return WantHostPort
	}
	return ""
}

// Port returns the port of a host:port address, for defaults written as
// one address (such as redis.DefaultAddr); 0 if it has none.
func Port(hostport string) int {
	_, p, _ := net.SplitHostPort(hostport)
	n, _ := strconv.Atoi(p)
	return n
}

// Host returns the host of a host:port address.
func Host(hostport string) string {
	h, _, _ := net.SplitHostPort(hostport)
	return h
}
