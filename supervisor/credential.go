package supervisor

import (
	"fmt"
	"os/user"
	"strconv"
	"syscall"

	"github.com/tend-dev/tend/config"
)

// lookupCredential resolves user, group and supplementary groups, given as
// names or numbers, into the credential the child is started with. Nil when
// neither user nor group is set: the child keeps the host's identity.
func lookupCredential(userName, groupName string, groups []string) (*syscall.Credential, error) {
	if userName == "" && groupName == "" {
		return nil, nil
	}
	cred := &syscall.Credential{Uid: uint32(syscall.Getuid()), Gid: uint32(syscall.Getgid())}
	var u *user.User
	if userName != "" {
		var err error
		if u, err = lookupUser(userName); err != nil {
			return nil, config.Invalid("user", userName, err.Error())
		}
		cred.Uid = parseID(u.Uid)
		cred.Gid = parseID(u.Gid)
	}
	if groupName != "" {
		gid, err := lookupGroup(groupName)
		if err != nil {
			return nil, config.Invalid("group", groupName, err.Error())
		}
		cred.Gid = gid
	}
	switch {
	case groups != nil:
		cred.Groups = make([]uint32, 0, len(groups))
		for _, g := range groups {
			gid, err := lookupGroup(g)
			if err != nil {
				return nil, config.Invalid("groups", g, err.Error())
			}
			cred.Groups = append(cred.Groups, gid)
		}
	case u != nil:
		// Like login and initgroups(3): the user's own supplementary groups,
		// never the host's (a root host would leak its groups).
		ids, err := u.GroupIds()
		if err != nil {
			return nil, config.Invalid("user", userName, "cannot list its groups: "+err.Error())
		}
		cred.Groups = make([]uint32, 0, len(ids))
		for _, id := range ids {
			cred.Groups = append(cred.Groups, parseID(id))
		}
	default:
		cred.Groups = []uint32{} // setgroups(0): drop the host's groups
	}
	return cred, nil
}

func lookupUser(name string) (*user.User, error) {
	if _, err := strconv.ParseUint(name, 10, 32); err == nil {
		if u, err := user.LookupId(name); err == nil {
			return u, nil
		}
		// A numeric uid without a passwd entry is still a valid identity.
		return &user.User{Uid: name, Gid: name}, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("no such user")
	}
	return u, nil
}

func lookupGroup(name string) (uint32, error) {
	if id, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(id), nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("no such group")
	}
	return parseID(g.Gid), nil
}

// parseID parses a numeric id that os/user returned; on Unix they are
// always decimal.
func parseID(s string) uint32 {
	id, _ := strconv.ParseUint(s, 10, 32)
	return uint32(id)
}
