package sqlproxy

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// writeCommand frames exactly what writePacket frames for the same bytes.
func TestWriteCommand(t *testing.T) {
	for _, arg := range []string{"", "SELECT 1", strings.Repeat("x", 70000), strings.Repeat("y", 0xfffffe), strings.Repeat("z", 0xffffff+10)} {
		var a, b bytes.Buffer
		pa := &pconn{w: bufio.NewWriter(&a), seq: 3}
		pb := &pconn{w: bufio.NewWriter(&b), seq: 3}
		if err := pa.writeCommand(0x03, arg); err != nil {
			t.Fatal(err)
		}
		if err := pb.writePacket(append([]byte{0x03}, arg...)); err != nil {
			t.Fatal(err)
		}
		_ = pa.flush()
		_ = pb.flush()
		if !bytes.Equal(a.Bytes(), b.Bytes()) || pa.seq != pb.seq {
			t.Errorf("len %d: writeCommand and writePacket differ (seq %d, %d)", len(arg), pa.seq, pb.seq)
		}
	}
}

// mayNameSwitch never says no where the full check (normalize) would find
// a proxy switch.
func TestMayNameSwitch(t *testing.T) {
	for _, c := range []struct {
		sql  string
		want bool
	}{
		{"SELECT c FROM sbtest1 WHERE id=1", false},
		{"SET SESSION lockstep_linearizable_reads = ON", true},
		{"set   LockStep_Validate_Reads=0", true},
		{"SELECT @@LOCKSTEP_LINEARIZABLE_READS", true},
		{"select 'lockstep", false},
		{"SELECT @@loc\u212astep_linearizable_reads", true}, // KELVIN SIGN lower-cases to k
		{"SELECT 'ünïcode'", true},                          // non-ASCII: left to normalize
		{"", false},
	} {
		if got := mayNameSwitch(c.sql); got != c.want {
			t.Errorf("%q: %v, want %v", c.sql, got, c.want)
		}
		if strings.Contains(normalize(c.sql), "lockstep_") && !mayNameSwitch(c.sql) {
			t.Errorf("%q: the scan misses a switch normalize finds", c.sql)
		}
	}
}
