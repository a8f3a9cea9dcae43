package sqlproxy

import (
	"strconv"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/lockstepdb/lockstep/command"
)

const (
	charsetUTF8   = 33 // utf8mb3_general_ci
	charsetBinary = 63
)

// writeResultSet writes to the client c a small text result set generated
// by the proxy (EOF-terminated: CLIENT_DEPRECATE_EOF is never offered),
// with status on its EOF packets (session.okStatus).
func (c *pconn) writeResultSet(names []string, types []byte, vals [][]*string, status uint16) error {
	if err := c.writePacket(mysql.PutLengthEncodedInt(uint64(len(names)))); err != nil {
		return err
	}
	for i, n := range names {
		cs, length := uint16(charsetUTF8), uint32(512*3)
		if types[i] != mysql.MYSQL_TYPE_VAR_STRING {
			cs, length = charsetBinary, 21
		}
		if err := c.writePacket(columnDef(n, types[i], length, cs)); err != nil {
			return err
		}
	}
	if err := c.writePacket(eofPacket(0, status)); err != nil {
		return err
	}
	for _, row := range vals {
		if err := c.writePacket(textRow(row)); err != nil {
			return err
		}
	}
	return c.writePacket(eofPacket(0, status))
}

// writeWarnings writes ws to the client c as SHOW WARNINGS does.
func (c *pconn) writeWarnings(ws []command.Warning, status uint16) error {
	rows := make([][]*string, 0, len(ws))
	for _, w := range ws {
		lvl, code, msg := w.Level, strconv.Itoa(int(w.Code)), w.Message
		rows = append(rows, []*string{&lvl, &code, &msg})
	}
	return c.writeResultSet([]string{"Level", "Code", "Message"},
		[]byte{mysql.MYSQL_TYPE_VAR_STRING, mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_VAR_STRING}, rows, status)
}
