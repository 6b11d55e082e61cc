package store_test

import (
	"context"
	"testing"
)

// The database itself refuses a second active job for a service and a
// job whose active slot disagrees with its state, whatever code writes.
func TestSchemaGuardsOneActiveJobPerService(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	insert := `INSERT INTO mod_pvekeep_jobs (service_id, kind, state, error, actor_type, active_service_id, created_at, updated_at)
VALUES (?, 'backup.create', ?, '', 'system', ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))`
	sid := int64(b.service(0))
	if _, err := s.DB().ExecContext(ctx, insert, sid, "queued", sid); err != nil {
		t.Fatalf("first active job: %v", err)
	}
	tests := []struct {
		name   string
		state  string
		active any
	}{
		{name: "second queued job for the same service", state: "queued", active: sid},
		{name: "running job without its active slot", state: "running", active: nil},
		{name: "finished job still holding an active slot", state: "succeeded", active: sid + 1},
		{name: "unknown state", state: "paused", active: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.DB().ExecContext(ctx, insert, sid, tc.state, tc.active); err == nil {
				t.Error("insert accepted, want it refused by the schema")
			}
		})
	}
	if _, err := s.DB().ExecContext(ctx, insert, sid, "failed", nil); err != nil {
		t.Errorf("terminal job without active slot refused: %v", err)
	}
}
