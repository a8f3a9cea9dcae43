// Package sqlproxy is Lockstep's MySQL-protocol front end: it accepts client
// connections, authenticates them by relaying the handshake to the local
// MariaDB/MySQL server (so the backend checks passwords with any auth
// plugin and every session runs with the client's real grants), and then
// runs each statement on one of two paths:
//
//   - reads and session statements run on the session's own backend
//     connection; the backend's response packets are relayed to the client
//     as they arrive (never buffered whole);
//   - writes and DDL are classified and rewritten for determinism (package
//     classify), privilege-checked on the client's own backend session,
//     packed into a command.Entry with the session context and pinned
//     values, and handed to the Orderer; the client gets this node's result
//     of the ordered execution.
//
// Explicit transactions run optimistically on the client's own backend
// session and, if they wrote, are ordered at COMMIT as one entry that every
// node re-executes and validates (tx.go; docs/TRANSACTIONS.md).
//
// The package owns the MySQL command loop; it uses go-mysql only for
// constants, the error type and length-encoding helpers. The packages it
// uses return plain errors (command's, *quorum.Error, classify's *Refusal);
// errors.go alone turns them, and the proxy's own errors, into MySQL
// errors.
//
// Package sqlproxytest starts a real MariaDB and a Server in front of it for
// tests. See DESIGN.md for the request path, trade-offs and failure stories.
package sqlproxy
