package sqlproxy

import (
	"context"
	"log/slog"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/sqlproxy/classify"
)

// Routines tells whether a stored procedure may be called (optional; nil
// refuses every CALL). CheckedProcedure reports what this node has applied
// about procedure db.name: found is false when it does not exist here;
// checked is false when it was not created through Lockstep with a body
// check; current is false when its body is no longer the one checked; why
// is the check's verdict ("" when a CALL may be ordered). It reads
// committed, applied state only and is called concurrently from sessions.
type Routines interface {
	CheckedProcedure(ctx context.Context, db, name string) (found, checked, current bool, why string, err error)
}

// adviceCall is the advice of every refused CALL.
const adviceCall = "Send the procedure's statements from the client"

// readOnlyMark starts the recorded verdict (lockstep.routines.why) of a
// procedure checked read-only (classify.Routine.ReadOnly): the applier
// orders a CALL only for an empty verdict, so such a procedure is never
// called through the log, and checkCall strips the mark from its reason.
const readOnlyMark = "read-only: "

// localCall reports whether st (classified from text) is a CALL of a
// procedure this node recorded as checked read-only, whose body is still
// the one checked. It then turns st into a plain read of text, which the
// caller runs on the session's own backend, relaying the procedure's
// result sets (and final OK, or error) as MariaDB sends them; nothing is
// ordered. Inside a transaction such a read is relayed and not recorded
// for the commit's validation (TxReplay is not set), so it is allowed only
// while the transaction has not written, and no write may follow it
// (optimisticTx.called; a transaction that only reads is never ordered, and its
// reads see the origin's snapshot). Any other CALL, or a failed look-up,
// returns false and takes the ordered path, which refuses or orders it as
// before.
func (s *session) localCall(st *classify.Statement, text string) bool {
	if st.Routine == nil || (st.Class != classify.Write && st.Class != classify.Refused) || s.srv.deps.Routines == nil {
		return false
	}
	if (s.tx != nil && s.tx.writes) || (s.tx == nil && !s.autocommit) {
		return false // unrecorded reads after writes could not be validated
	}
	if s.refreshContext() != nil {
		return false
	}
	rt := s.sctx.routineFor(*st)
	if rt == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(s.srv.ctx, s.srv.cfg.ReadTimeout)
	defer cancel()
	found, checked, current, why, err := s.srv.deps.Routines.CheckedProcedure(ctx, rt.DB, rt.Name)
	if err != nil || !found || !checked || !current || !strings.HasPrefix(why, readOnlyMark) {
		return false
	}
	*st = classify.Statement{Class: classify.Read, Kind: "CALL", SQL: text}
	if s.tx != nil {
		s.tx.called = true
	}
	return true
}

// checkCall decides whether a CALL of rt may be ordered, from what this
// node applied when the procedure was created. A returned *mysql.MyError
// refuses it (1305 for a procedure that does not exist, as MariaDB; 1235
// with the reason otherwise; 1105 when the local database cannot tell);
// log is the calling session's.
func (srv *Server) checkCall(rt *command.Routine, log *slog.Logger) (*mysql.MyError, error) {
	if rt == nil {
		return &mysql.MyError{Code: mysql.ER_NO_DB_ERROR, State: "3D000", Message: "No database selected"}, nil
	}
	what := "CALL of " + rt.DB + "." + rt.Name
	r := srv.deps.Routines
	if r == nil {
		return toMyError(&classify.Refusal{What: "CALL", Why: "this node cannot read which procedures were checked", Advice: adviceCall, Unsupported: true}), nil
	}
	ctx, cancel := context.WithTimeout(srv.ctx, srv.cfg.ReadTimeout)
	defer cancel()
	found, checked, current, why, err := r.CheckedProcedure(ctx, rt.DB, rt.Name)
	switch {
	case err != nil:
		log.Warn("cannot read checked procedures", "err", err)
		return toMyError(err), nil
	case !found:
		return errNoProcedure(rt.DB, rt.Name), nil
	case !checked:
		return toMyError(&classify.Refusal{What: what, Unsupported: true,
			Why:    "the procedure was not checked when it was created (it was created outside Lockstep, or before Lockstep checked procedure bodies)",
			Advice: "Re-create it through Lockstep (DROP PROCEDURE, then CREATE PROCEDURE), or " + lowerFirst(adviceCall)}), nil
	case !current:
		return toMyError(&classify.Refusal{What: what, Unsupported: true,
			Why:    "the procedure's body changed since it was checked (it was changed outside Lockstep)",
			Advice: "Re-create it through Lockstep (DROP PROCEDURE, then CREATE PROCEDURE), or " + lowerFirst(adviceCall)}), nil
	case why != "":
		return toMyError(&classify.Refusal{What: what, Why: strings.TrimPrefix(why, readOnlyMark), Advice: adviceCall}), nil
	}
	return nil, nil
}

func lowerFirst(s string) string {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return s
	}
	return string(s[0]+'a'-'A') + s[1:]
}
