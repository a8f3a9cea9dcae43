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

// privKey returns the cache key of a plain write, or "" when the write
// must always be checked: account management, DDL, statements that name
// the mysql schema (grant tables), or text that does not scan.
func (s *session) privKey(sql string, ddl bool) string {
	if s.srv.deps.Privileges == nil || ddl || strings.Contains(strings.ToLower(sql), "mysql") {
		return ""
	}
	shape, ok := classify.Shape(sql, s.noBackslash())
	if !ok {
		return ""
	}
	return s.ctxDB + "\x00" + shape
}

// privPassed reports whether key's check passed at the current generation.
func (s *session) privPassed(key string) bool {
	if key == "" {
		return false
	}
	gen := s.srv.deps.Privileges.PrivilegeGeneration()
	if s.privs.gen != gen {
		s.privs = privCache{gen: gen}
		return false
	}
	_, ok := s.privs.passed[key]
	return ok
}

// privRemember records that key's check passed at generation gen (read
// before the check ran, so a change during the check is not missed).
func (s *session) privRemember(key string, gen uint64) {
	if key == "" || s.privs.gen != gen {
		return
	}
	if s.privs.passed == nil || len(s.privs.passed) >= privCacheMax {
		s.privs.passed = make(map[string]struct{})
	}
	s.privs.passed[key] = struct{}{}
}
