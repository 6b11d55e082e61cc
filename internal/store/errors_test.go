package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/go-sql-driver/mysql"
)

func TestClassifyMarksOnlyConnectionFailuresUnavailable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		err     error
		connect bool // classified as a first contact
		want    bool
	}{
		{name: "driver bad conn", err: driver.ErrBadConn, want: true},
		{name: "mysql invalid connection", err: mysql.ErrInvalidConn, want: true},
		{name: "dial refused", err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, want: true},
		{name: "server gone away 2006", err: &mysql.MySQLError{Number: 2006}, want: true},
		{name: "lost connection 2013", err: &mysql.MySQLError{Number: 2013}, want: true},
		{name: "too many connections 1040", err: &mysql.MySQLError{Number: 1040}, want: true},
		{name: "wrapped net error", err: fmt.Errorf("read: %w", &net.OpError{Op: "read", Err: errors.New("reset")}), want: true},
		{name: "duplicate key is not", err: &mysql.MySQLError{Number: 1062}, want: false},
		{name: "access denied is not", err: &mysql.MySQLError{Number: 1045}, want: false},
		{name: "plain error is not", err: errors.New("boom"), want: false},
		{name: "deadline during a query is not", err: context.DeadlineExceeded, want: false},
		{name: "deadline while connecting is", err: context.DeadlineExceeded, connect: true, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := classify(tc.err)
			if tc.connect {
				got = classifyConnect(tc.err)
			}
			if errors.Is(got, ErrUnavailable) != tc.want {
				t.Errorf("classify(%v) = %v; unavailable want %v", tc.err, got, tc.want)
			}
			if !errors.Is(got, tc.err) {
				t.Errorf("classify lost the cause: %v", got)
			}
		})
	}
}
