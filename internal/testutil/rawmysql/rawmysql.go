// Package rawmysql speaks just enough of the MySQL client protocol, byte by
// byte, for tests that must send what no driver would (truncated, oversized
// or random packets): framing, the server's greeting, a
// mysql_native_password login response.
package rawmysql

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Packets frames payloads as one client's stream, sequence ids from seq.
func Packets(seq byte, payloads ...[]byte) []byte {
	var b []byte
	for _, p := range payloads {
		b = append(b, byte(len(p)), byte(len(p)>>8), byte(len(p)>>16), seq)
		b = append(b, p...)
		seq++
	}
	return b
}

// Read reads one packet's payload from c.
func Read(c net.Conn) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, err
	}
	p := make([]byte, int(hdr[0])|int(hdr[1])<<8|int(hdr[2])<<16)
	_, err := io.ReadFull(c, p)
	return p, err
}

// Greeting reads the server's initial handshake and returns its scramble.
func Greeting(c net.Conn) ([]byte, error) {
	p, err := Read(c)
	if err != nil {
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if len(p) == 0 || p[0] != 10 {
		return nil, fmt.Errorf("greeting: not a handshake: %q", p)
	}
	pos := 1 + bytes.IndexByte(p[1:], 0) + 1 + 4
	if len(p) < pos+8+1+2+1+2+2+1+10+12 {
		return nil, errors.New("greeting: short")
	}
	scramble := bytes.Clone(p[pos : pos+8])
	pos += 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10
	return append(scramble, p[pos:pos+12]...), nil
}

// LoginResponse is a protocol-41 handshake response for user/password
// (mysql_native_password) with database db.
func LoginResponse(scramble []byte, user, password, db string) []byte {
	caps := uint32(mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH |
		mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_TRANSACTIONS | mysql.CLIENT_MULTI_RESULTS |
		mysql.CLIENT_MULTI_STATEMENTS | mysql.CLIENT_CONNECT_WITH_DB)
	b := binary.LittleEndian.AppendUint32(nil, caps)
	b = binary.LittleEndian.AppendUint32(b, 16<<20)
	b = append(b, 45)
	b = append(b, make([]byte, 23)...)
	b = append(append(b, user...), 0)
	auth := mysql.CalcNativePassword(scramble, []byte(password))
	b = append(append(b, byte(len(auth))), auth...)
	b = append(append(b, db...), 0)
	return append(b, "mysql_native_password\x00"...)
}
