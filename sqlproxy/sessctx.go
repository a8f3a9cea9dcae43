package sqlproxy

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/sqlproxy/classify"
)

// sessionContext is what the proxy knows of its backend session's state:
// the default database and the replicated variables that every write
// carries in its entry (reloaded by refreshContext after a statement that
// may have changed them: dirty), whether the session's transactions are
// read-only, LAST_INSERT_ID() after the proxy's own writes, and the idle
// limit from wait_timeout. Only the session goroutine touches it.
type sessionContext struct {
	dirty    bool              // a statement may have changed db, vars, raw or readOnly
	db       string            // DATABASE()
	vars     map[string]string // replicated variable -> SQL literal
	raw      map[string]string // replicated variable -> raw value
	readOnly bool              // transaction_read_only is set

	// lastID is the session's LAST_INSERT_ID() as the proxy knows it after
	// its own writes (lastIDKnown). lastIDPending means the backend session
	// has not been told yet: it is told lazily, before the next client
	// command reaches the backend (beforeBackend), so a stream of writes
	// costs no round trip for it.
	lastID        uint64
	lastIDKnown   bool
	lastIDPending bool

	// idleLimit closes the client's connection after that long without a
	// command, as the backend closes its side after the session's
	// wait_timeout (0: the session never set one; the backend's default
	// of hours applies). idleDirty: a SET may have changed it.
	idleLimit time.Duration
	idleDirty bool
}

// load takes the default database, the replicated variables names and the
// read-only mark from r, the answer to contextQuery(names, …).
func (c *sessionContext) load(names []string, r *rows) error {
	if len(r.vals) != 1 || len(r.vals[0]) != len(names)+2 {
		return errors.New("session context query returned an unexpected shape")
	}
	row := r.vals[0]
	c.db = ""
	if row[0] != nil {
		c.db = *row[0]
	}
	vars := make(map[string]string, len(names))
	raw := make(map[string]string, len(names))
	for i, name := range names {
		v := row[i+1]
		if v == nil {
			continue // e.g. a variable this server version lacks
		}
		vars[name] = valueLiteral(r.cols[i+1], *v, "")
		raw[name] = *v
	}
	c.vars, c.raw = vars, raw // replaced, never mutated: entries share them
	ro := row[len(names)+1]
	c.readOnly = ro != nil && *ro != "0"
	c.dirty = false
	return nil
}

// forget drops what the backend forgets when its session is reset
// (COM_RESET_CONNECTION, COM_CHANGE_USER): the context is read again.
func (c *sessionContext) forget() {
	c.dirty = true
	c.lastIDKnown, c.lastIDPending = false, false
}

// wrote records LAST_INSERT_ID() after a write ordered with the session's
// lastID whose result has insert id insertID (0: none, LAST_INSERT_ID()
// is unchanged). The backend session learns a new value lazily.
func (c *sessionContext) wrote(lastID, insertID uint64) {
	c.lastID, c.lastIDKnown = lastID, true
	if insertID != 0 {
		c.lastID, c.lastIDPending = insertID, true
	}
}

// setIdleLimit takes the idle limit from r, the answer to SELECT
// @@session.wait_timeout; an answer that is not a positive number leaves
// it as it was.
func (c *sessionContext) setIdleLimit(r *rows) {
	if len(r.vals) == 1 && len(r.vals[0]) == 1 && r.vals[0][0] != nil {
		if n, err := strconv.ParseUint(*r.vals[0][0], 10, 32); err == nil && n > 0 {
			c.idleLimit = time.Duration(n) * time.Second
		}
	}
}

// clientCharset is the session's character_set_client (for introducers).
func (c *sessionContext) clientCharset() string {
	return charsetName(c.raw["character_set_client"])
}

// connCharset is the session's character_set_connection.
func (c *sessionContext) connCharset() string {
	return charsetName(c.raw["character_set_connection"])
}

// charsetName returns cs when it is a plain character set name (usable
// after an introducer's '_'), else "".
func charsetName(cs string) string {
	for _, c := range cs {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return ""
		}
	}
	return cs
}

// autoIncrement returns the session's auto_increment_increment and
// auto_increment_offset as the server applies them (1, 1 when unset or out
// of range).
func (c *sessionContext) autoIncrement() (inc, off uint64) {
	inc, off = 1, 1
	if v, err := strconv.ParseUint(c.raw["auto_increment_increment"], 10, 64); err == nil && v > 0 {
		inc = v
	}
	if v, err := strconv.ParseUint(c.raw["auto_increment_offset"], 10, 64); err == nil && v > 0 && v <= inc {
		off = v
	}
	return inc, off
}

// routineFor resolves the procedure a CREATE PROCEDURE or CALL names
// against the session's default database, for the entry. nil when there
// is none (no default database: the statement fails on its own).
func (c *sessionContext) routineFor(st classify.Statement) *command.Routine {
	if st.Routine == nil {
		return nil
	}
	db := st.Routine.DB
	if db == "" {
		db = c.db
	}
	if db == "" || st.Routine.Name == "" {
		return nil
	}
	r := &command.Routine{DB: db, Name: st.Routine.Name}
	if st.Class == classify.DDL {
		r.Why = st.Routine.Why
		if st.Routine.ReadOnly {
			r.Why = readOnlyMark + r.Why
		}
		for _, t := range st.Routine.Inserts {
			if !strings.Contains(t, ".") {
				t = db + "." + t // inside the body, the procedure's database
			}
			r.Inserts = append(r.Inserts, t)
		}
	}
	return r
}
