package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// qmp is a client of QEMU's machine protocol on a Unix socket: commands one
// at a time, events collected as they come.
type qmp struct {
	conn net.Conn
	mu   sync.Mutex // one command at a time
	resp chan qmpMessage

	evMu   sync.Mutex
	events []qmpMessage
}

type qmpMessage struct {
	Event  string          `json:"event"`
	Data   json.RawMessage `json:"data"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Greeting json.RawMessage `json:"QMP"`
	at       time.Time
}

// dialQMP connects to path, retrying until QEMU has created the socket or
// limit has passed, reads the greeting and leaves negotiation mode.
func dialQMP(path string, limit time.Duration) (*qmp, error) {
	deadline := time.Now().Add(limit)
	var conn net.Conn
	var err error
	for {
		conn, err = net.Dial("unix", path)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("qmp: %w", err)
	}
	q := &qmp{conn: conn, resp: make(chan qmpMessage, 1)}
	greeting := make(chan error, 1)
	go q.read(greeting)
	select {
	case err := <-greeting:
		if err != nil {
			conn.Close()
			return nil, err
		}
	case <-time.After(limit):
		conn.Close()
		return nil, errors.New("qmp: no greeting")
	}
	if _, err := q.command("qmp_capabilities", nil); err != nil {
		conn.Close()
		return nil, err
	}
	return q, nil
}

func (q *qmp) read(greeting chan<- error) {
	sc := bufio.NewScanner(q.conn)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	first := true
	for sc.Scan() {
		var m qmpMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			continue
		}
		m.at = time.Now()
		switch {
		case first && m.Greeting != nil:
			first = false
			greeting <- nil
		case m.Event != "":
			q.evMu.Lock()
			q.events = append(q.events, m)
			q.evMu.Unlock()
		default:
			select {
			case q.resp <- m:
			default: // a reply nobody waits for any more
			}
		}
	}
	if first {
		greeting <- errors.New("qmp: connection closed before the greeting")
	}
	close(q.resp)
}

// command runs a QMP command and returns its "return" value.
func (q *qmp) command(name string, args any) (json.RawMessage, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	req := map[string]any{"execute": name}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", name, err)
	}
	select {
	case m, ok := <-q.resp:
		if !ok {
			return nil, fmt.Errorf("qmp %s: connection closed", name)
		}
		if m.Error != nil {
			return nil, fmt.Errorf("qmp %s: %s: %s", name, m.Error.Class, m.Error.Desc)
		}
		return m.Return, nil
	case <-time.After(10 * time.Second):
		return nil, fmt.Errorf("qmp %s: no reply in 10 s", name)
	}
}

// shutdownReason returns the reason of the SHUTDOWN event ("guest-shutdown",
// "guest-reset", ...), or "" if none came.
func (q *qmp) shutdownReason() string {
	q.evMu.Lock()
	defer q.evMu.Unlock()
	for _, m := range q.events {
		if m.Event == "SHUTDOWN" {
			var d struct {
				Reason string `json:"reason"`
			}
			_ = json.Unmarshal(m.Data, &d)
			return d.Reason
		}
	}
	return ""
}

func (q *qmp) Close() error { return q.conn.Close() }

// ctrlAltDel is the send-key command's argument for Ctrl-Alt-Del.
var ctrlAltDel = map[string]any{"keys": []map[string]string{
	{"type": "qcode", "data": "ctrl"},
	{"type": "qcode", "data": "alt"},
	{"type": "qcode", "data": "delete"},
}}
