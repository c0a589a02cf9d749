package gateway

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// deadlineRecorder is a net.Conn that records the write deadline and, at
// each write, how much of it was left.
type deadlineRecorder struct {
	net.Conn
	deadline time.Time
	sets     int
	left     []time.Duration
}

func (r *deadlineRecorder) SetWriteDeadline(t time.Time) error {
	r.deadline = t
	r.sets++
	return nil
}

func (r *deadlineRecorder) Write(p []byte) (int, error) {
	r.left = append(r.left, time.Until(r.deadline))
	return len(p), nil
}

func TestWriteConnArmsDeadlineLazily(t *testing.T) {
	t.Parallel()
	const timeout = time.Hour
	tests := []struct {
		name   string
		armed  time.Duration // from now; 0: none
		writes int
		sets   int
	}{
		{"first write arms", 0, 1, 1},
		{"later writes reuse the armed deadline", 0, 100, 1},
		{"a deadline that passed while idle is re-armed before the write", -time.Minute, 3, 1},
		{"less than the timeout left: re-armed", timeout - time.Minute, 2, 1},
		{"more than the timeout left: kept", timeout + time.Minute, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &deadlineRecorder{}
			c := &writeConn{Conn: rec, timeout: timeout}
			if tt.armed != 0 {
				if err := c.SetWriteDeadline(time.Now().Add(tt.armed)); err != nil {
					t.Fatal(err)
				}
				rec.sets = 0
			}
			for range tt.writes {
				if _, err := c.Write([]byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			if rec.sets != tt.sets {
				t.Errorf("deadline set %d times, want %d", rec.sets, tt.sets)
			}
			for i, left := range rec.left {
				if left < timeout-time.Minute || left > timeout*3/2 {
					t.Errorf("write %d had %v of its deadline left, want between %v and %v", i, left, timeout, timeout*3/2)
				}
			}
		})
	}
}

// TestWriteConnClosesGracefully: a close with client data still unread
// sends what was written and a FIN, not a reset that would destroy it.
func TestWriteConnClosesGracefully(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	wc := &writeConn{Conn: raw, timeout: time.Minute}
	defer wc.release()

	if _, err := client.Write([]byte("never read by the server")); err != nil {
		t.Fatal(err)
	}
	if _, err := wc.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	if err := wc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := client.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(client)
	if err != nil || string(got) != "bye" {
		t.Fatalf("client read %q, %v; want \"bye\" and a clean end", got, err)
	}
}

// timeoutConn is a net.Conn whose writes time out, counting the calls.
type timeoutConn struct {
	net.Conn
	writes, sets int
}

func (c *timeoutConn) SetWriteDeadline(time.Time) error { c.sets++; return nil }

func (c *timeoutConn) Write([]byte) (int, error) {
	c.writes++
	return 0, os.ErrDeadlineExceeded
}

// TestWriteConnFailsAfterATimeout: once a write timed out, later writes
// (gws's close frame) fail at once instead of re-arming the deadline and
// waiting another timeout on a client that does not read.
func TestWriteConnFailsAfterATimeout(t *testing.T) {
	t.Parallel()
	raw := &timeoutConn{}
	c := &writeConn{Conn: raw, timeout: time.Minute}
	if _, err := c.Write([]byte("change")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("first write: %v, want the timeout", err)
	}
	if _, err := c.Write([]byte("close frame")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write after a timeout: %v, want the timeout again", err)
	}
	if raw.writes != 1 || raw.sets != 1 {
		t.Errorf("%d writes and %d deadlines reached the socket, want 1 and 1", raw.writes, raw.sets)
	}
}
