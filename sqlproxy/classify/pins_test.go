package classify

import (
	"fmt"
	"time"
)

// testPins returns deterministic pins: UUIDs and UUID_SHORTs count up from 1.
func testPins() Pins {
	var u, us uint64
	return Pins{
		Now: time.Date(2026, 11, 22, 4, 30, 0, 123456000, time.UTC),
		UUID: func() string {
			u++
			return fmt.Sprintf("00000000-0000-4000-8000-%012d", u)
		},
		UUIDShort:    func() uint64 { us++; return 99000 + us },
		ConnectionID: 42,
		CurrentUser:  "'app'@'10.0.0.%'",
	}
}
