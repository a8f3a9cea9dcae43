package sqlproxy

import (
	"strings"

	"github.com/lockstepdb/lockstep/sqlproxy/classify"
)

// privCacheMax bounds a session's cached privilege checks; the cache starts
// over when it is full.
const privCacheMax = 256

// privCache remembers, per session, the write shapes (classify.Shape, with
// the default database) whose privilege check passed, at one
// Privileges.PrivilegeGeneration: a statement of a known shape skips the
// PREPARE round trip until the generation changes (a DDL or account
// statement applied on this node, from any origin) or the session's
// context does (SET ROLE, USE, CHANGE_USER: refreshContext resets it).
type privCache struct {
	gen    uint64
	passed map[string]struct{}
}

// privKey returns the cache key of a plain write in the default database
// db, or "" when the write must always be checked: account management, DDL,
// statements that name the mysql schema (grant tables), or text that does
// not scan.
func privKey(sql, db string, ddl, noBackslash bool) string {
	if ddl || strings.Contains(strings.ToLower(sql), "mysql") {
		return ""
	}
	shape, ok := classify.Shape(sql, noBackslash)
	if !ok {
		return ""
	}
	return db + "\x00" + shape
}

// has reports whether key's check passed at generation gen, the current
// one (a new generation empties the cache).
func (c *privCache) has(key string, gen uint64) bool {
	if c.gen != gen {
		*c = privCache{gen: gen}
		return false
	}
	_, ok := c.passed[key]
	return ok
}

// remember records that key's check passed at generation gen (read
// before the check ran, so a change during the check is not missed).
func (c *privCache) remember(key string, gen uint64) {
	if key == "" || c.gen != gen {
		return
	}
	if c.passed == nil || len(c.passed) >= privCacheMax {
		c.passed = make(map[string]struct{})
	}
	c.passed[key] = struct{}{}
}
