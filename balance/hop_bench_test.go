package balance

import (
	"encoding/json"
	"io"
	"net"
	"testing"
	"time"
)

// pingPong runs b.N 100-byte round trips on conn (an echo server behind).
func pingPong(b *testing.B, conn net.Conn) {
	buf := make([]byte, 100)
	b.ResetTimer()
	for range b.N {
		if _, err := conn.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(conn, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func echoServer(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkHop: a 100-byte request/response round trip straight to an
// echo server, and through the Balancer (one more TCP hop, copied with
// splice). The difference is what the cluster address adds per round trip.
func BenchmarkHop(b *testing.B) {
	addr := echoServer(b)
	b.Run("direct", func(b *testing.B) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		pingPong(b, conn)
	})
	b.Run("balancer", func(b *testing.B) {
		c := NewCluster("n1", Settings{Policy: RoundRobin}, func() Report { return Report{} }, time.Hour)
		c.Reply("n1", mustJSON(Report{Node: "n1", SQLAddr: addr, Serving: true}))
		bal := New(c, nil)
		if err := bal.Start("127.0.0.1:0"); err != nil {
			b.Fatal(err)
		}
		defer bal.Stop()
		conn, err := net.Dial("tcp", bal.ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		pingPong(b, conn)
	})
}

func mustJSON(r Report) []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	return b
}
