//go:build unix

package stackconfig

import (
	"strings"
	"testing"
)

// TestOnlyRootAndMe: a group-writable directory above the state dir is
// fine when the group's members are this user (uid 1000) and root only: a
// user private group, which Debian's and Fedora's umask 002 makes every new
// directory writable by.
func TestOnlyRootAndMe(t *testing.T) {
	const passwd = "root:x:0:0::/root:/bin/sh\nme:x:1000:1000::/home/me:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\nsuse:x:1002:100::/home/suse:/bin/sh\n"
	tests := []struct {
		name  string
		gid   uint32
		group string
		want  bool
	}{
		{"my private group", 1000, "me:x:1000:\n", true},
		{"my private group listing me", 1000, "me:x:1000:me\n", true},
		{"root's group", 0, "root:x:0:\n", true},
		{"my group with root in it", 1000, "me:x:1000:root\n", true},
		{"a group bob is in", 1000, "me:x:1000:me,bob\n", false},
		{"another user's primary group", 1001, "bob:x:1001:\n", false},
		{"users, another user's primary group", 100, "users:x:100:me\n", false},
		{"a group without members", 50, "staff:x:50:\n", false},
		{"a member not in passwd", 1000, "me:x:1000:ldapuser\n", false},
		{"a group only NSS knows", 5000, "me:x:1000:\n", true},
		{"comments and NIS lines", 1000, "# comment\n+:::\nme:x:1000:\n", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := onlyRootAndMe(tc.gid, 1000, []byte(passwd), []byte(tc.group)); got != tc.want {
				t.Errorf("onlyRootAndMe(gid %d) with group %q: got %v, want %v", tc.gid, tc.group, got, tc.want)
			}
		})
	}
}

// TestIDMapped: in the Nix build sandbox only the build user is mapped,
// and root's / shows as the overflow uid, 65534, a user outside the
// namespace; outside any namespace every uid is mapped, nobody's too.
func TestIDMapped(t *testing.T) {
	tests := []struct {
		name   string
		uidMap string
		uid    uint32
		want   bool
	}{
		{"initial namespace, nobody", "         0          0 4294967295\n", 65534, true},
		{"initial namespace, root", "         0          0 4294967295\n", 0, true},
		{"sandbox, the build user", "      1000      30001          1\n", 1000, true},
		{"sandbox, the overflow uid", "      1000      30001          1\n", 65534, false},
		{"sandbox, root", "      1000      30001          1\n", 0, false},
		{"two ranges", "0 1000 1\n1 100000 65536\n", 65536, true},
		{"past two ranges", "0 1000 1\n1 100000 65536\n", 65537, false},
		{"empty", "", 0, false},
		{"a line of two fields", "0 0\n", 65534, true},
		{"a line not of numbers", "0 0 all\n", 65534, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := idMapped(tc.uid, []byte(tc.uidMap)); got != tc.want {
				t.Errorf("idMapped(%d, %q): got %v, want %v", tc.uid, tc.uidMap, got, tc.want)
			}
		})
	}
}

// TestGroupName: a refused group-writable directory names its group by name
// where the system has one (root's group, gid 0, is root or wheel), and by
// number alone otherwise.
func TestGroupName(t *testing.T) {
	if got := groupName(0); !strings.HasSuffix(got, " (gid 0)") || strings.HasPrefix(got, " ") {
		t.Errorf("groupName(0) = %q, want a name, then (gid 0)", got)
	}
	if got := groupName(3999999); got != "gid 3999999" {
		t.Errorf("groupName(3999999) = %q, want gid 3999999", got)
	}
}
