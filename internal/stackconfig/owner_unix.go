//go:build unix

package stackconfig

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// checkOwner refuses what fi describes (path) unless this process's
// effective user owns it. A state dir, or the secret file, of another user is
// theirs to change even after up restricts its mode: one a local user created
// in advance under a shared directory such as /tmp, with a
// secrets/jwt_secret of their own, would hand them the signing key, and with
// it any user's transactions (RELIABILITY.md D54).
func checkOwner(path string, fi os.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if euid := os.Geteuid(); int(st.Uid) != euid {
		return fmt.Errorf("%s is owned by uid %d, not by this user (uid %d): %w; point STACK_STATE_DIR at a new directory of this user's", path, st.Uid, euid, ErrNotOwned)
	}
	return nil
}

// checkParent refuses dir, a directory above the state dir (fi from Lstat),
// when a user other than root and this one could rename or replace what it
// holds, as OpenSSH's StrictModes judges the directories above
// ~/.ssh/authorized_keys: dir must be owned by root or this user, and not
// writable by others or by its group, unless it is sticky (as /tmp is: only
// an entry's owner may rename it). A group whose only members are root and
// this user may write it (a user private group: Debian's and Fedora's umask
// 002 makes a checkout group-writable), as Debian's OpenSSH allows; a group
// that /etc/group does not list (one from LDAP, say) cannot be told apart
// and may too. An owner outside this user namespace (the overflow uid: the
// Nix build sandbox shows its /, root's on the host, so) counts as root.
func checkParent(dir string, fi os.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	euid := os.Geteuid()
	perm := fi.Mode().Perm()
	switch {
	case st.Uid != 0 && int(st.Uid) != euid && !outsideNamespace(st.Uid):
		return fmt.Errorf("%s is owned by uid %d, neither root nor this user (uid %d)", dir, st.Uid, euid)
	case fi.Mode()&os.ModeSticky != 0:
		return nil
	case perm&0o002 != 0:
		return modeError(fmt.Sprintf("%s is writable by every user and not sticky (mode %04o)", dir, perm))
	case perm&0o020 != 0 && !groupOfRootAndMe(st.Gid, euid):
		return modeError(fmt.Sprintf("%s is writable by its group, %s, which has members other than root and this user, or none (mode %04o)", dir, groupName(st.Gid), perm))
	}
	return nil
}

// lookupDirs lists the directories that a lookup of path, made absolute,
// reads a name from, as the kernel resolves it: those on the path, and,
// for each symlink met on the way (path itself included, and a link a
// link leads to), those on the way to where it leads, from the directory
// that holds it when it is relative. Each is a real directory, with no
// symlink in its name. The lookup ends at the first name that does not
// exist: the directories below are not created yet.
func lookupDirs(path string) ([]string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	var dirs []string
	dir, rest := "/", abs
	for links := 0; rest != ""; {
		var name string
		name, rest, _ = strings.Cut(rest, "/")
		switch name {
		case "", ".":
			continue
		case "..":
			dir = filepath.Dir(dir)
			continue
		}
		if !slices.Contains(dirs, dir) {
			dirs = append(dirs, dir)
		}
		next := filepath.Join(dir, name)
		fi, err := os.Lstat(next)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return dirs, nil
		case err != nil:
			return nil, err
		case fi.Mode()&fs.ModeSymlink == 0:
			dir = next
			continue
		}
		if links++; links > 255 {
			return nil, fmt.Errorf("%s: too many levels of symbolic links", path)
		}
		target, err := os.Readlink(next)
		if err != nil {
			return nil, err
		}
		if filepath.IsAbs(target) {
			dir = "/"
		}
		rest = target + "/" + rest
	}
	return dirs, nil
}

// outsideNamespace reports whether uid, a file's owner, is no user of this
// user namespace: the kernel shows such an owner as the overflow uid. False
// where /proc/self/uid_map cannot be read.
func outsideNamespace(uid uint32) bool {
	m, err := os.ReadFile("/proc/self/uid_map")
	return err == nil && !idMapped(uid, m)
}

// idMapped reports whether id is inside one of the ranges of a uid_map
// (lines of "first-inside first-outside count"). A line it cannot read
// counts as mapping everything.
func idMapped(id uint32, idMap []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(idMap))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return true
		}
		first, err1 := strconv.ParseUint(f[0], 10, 32)
		count, err2 := strconv.ParseUint(f[2], 10, 33)
		if err1 != nil || err2 != nil {
			return true
		}
		if uint64(id) >= first && uint64(id)-first < count {
			return true
		}
	}
	return false
}

// groupOfRootAndMe reports whether group gid has members, and only root and
// the user uid, as /etc/passwd (primary groups) and /etc/group (the others)
// list them; true for a group /etc/group does not list.
func groupOfRootAndMe(gid uint32, uid int) bool {
	passwd, _ := os.ReadFile("/etc/passwd")
	group, err := os.ReadFile("/etc/group")
	if err != nil {
		return true
	}
	return onlyRootAndMe(gid, uint32(uid), passwd, group)
}

// onlyRootAndMe is groupOfRootAndMe on the contents of /etc/passwd and
// /etc/group. A group with no member is refused: only setgid programs (or
// root) write with it, and one could be made to write there.
func onlyRootAndMe(gid, uid uint32, passwd, group []byte) bool {
	want := strconv.FormatUint(uint64(gid), 10)
	uids := map[string]string{} // user name: uid
	members := 0
	for _, f := range colonFields(passwd) {
		if len(f) < 4 {
			continue
		}
		uids[f[0]] = f[2]
		if f[3] == want {
			if f[2] != "0" && f[2] != strconv.FormatUint(uint64(uid), 10) {
				return false
			}
			members++
		}
	}
	for _, f := range colonFields(group) {
		if len(f) < 4 || f[2] != want {
			continue
		}
		for _, name := range strings.Split(f[3], ",") {
			if name == "" {
				continue
			}
			if u, ok := uids[name]; !ok || (u != "0" && u != strconv.FormatUint(uint64(uid), 10)) {
				return false
			}
			members++
		}
		return members > 0
	}
	return true
}

// colonFields splits each line of a passwd or group file at its colons,
// leaving out comments and NIS lines ("+", "-").
func colonFields(b []byte) [][]string {
	var out [][]string
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "+") || strings.HasPrefix(line, "-") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out
}

// groupName is "<name> (gid N)", or "gid N" when the group has no name here.
func groupName(gid uint32) string {
	id := strconv.FormatUint(uint64(gid), 10)
	if g, err := user.LookupGroupId(id); err == nil && g.Name != "" {
		return g.Name + " (gid " + id + ")"
	}
	return "gid " + id
}

// readableByOthers says who besides root and this user may read the file fi
// describes (from Stat), or "" when no one: every user, or a group with
// members other than root and this user (or none), as checkParent judges
// writers. (A settings file of another user's is refused before: checkChangers.)
func readableByOthers(fi os.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	euid := os.Geteuid()
	perm := fi.Mode().Perm()
	switch {
	case perm&0o004 != 0:
		return fmt.Sprintf("is readable by every user (mode %04o)", perm)
	case perm&0o040 != 0 && !groupOfRootAndMe(st.Gid, euid):
		return fmt.Sprintf("is readable by its group, %s, which has members other than root and this user, or none (mode %04o)", groupName(st.Gid), perm)
	}
	return ""
}

// checkChangers refuses path (fi from Stat or Lstat), a checkout or a
// settings file the launcher takes its commands or settings from, unless only
// root and this user can change it: owned by one of them (an owner outside
// this user namespace counts as root, as in checkParent), and writable by
// no other user, nor by a group with other members. Unlike checkParent, a
// sticky bit does not help: in a sticky directory another user may still
// add a file of their own.
func checkChangers(path string, fi os.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	euid := os.Geteuid()
	perm := fi.Mode().Perm()
	// A shared directory such as /tmp is sticky: chmod go-w is no mend there.
	mode, refuse := uint32(perm), func(s string) error { return modeError(s) }
	if fi.Mode()&os.ModeSticky != 0 {
		mode |= 0o1000
		refuse = func(s string) error { return errors.New(s + ", where any of them may add a file") }
	}
	switch {
	case st.Uid != 0 && int(st.Uid) != euid && !outsideNamespace(st.Uid):
		return fmt.Errorf("%s is owned by uid %d, neither root nor this user (uid %d)", path, st.Uid, euid)
	case perm&0o002 != 0:
		return refuse(fmt.Sprintf("%s is writable by every user (mode %04o)", path, mode))
	case perm&0o020 != 0 && !groupOfRootAndMe(st.Gid, euid):
		return refuse(fmt.Sprintf("%s is writable by its group, %s, which has members other than root and this user, or none (mode %04o)", path, groupName(st.Gid), mode))
	}
	return nil
}
