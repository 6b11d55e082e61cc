package jobs

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/store"
)

// memStore hands out its jobs to claims (once per pass, like leases that
// are released after each pass) and records releases.
type memStore struct {
	mu       sync.Mutex
	jobs     []pvekeep.Job
	claims   []store.ClaimRequest
	released []pvekeep.Lease
	extended []time.Time
	lost     map[pvekeep.JobID]bool // leases taken over by another runner
	claimErr error
}

func (m *memStore) ClaimJobs(_ context.Context, r store.ClaimRequest) ([]pvekeep.Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.claims = append(m.claims, r)
	if m.claimErr != nil {
		return nil, m.claimErr
	}
	var out []pvekeep.Job
	for i := range m.jobs {
		j := &m.jobs[i]
		if !j.State.Active() {
			continue
		}
		for _, id := range r.ServerIDs {
			if j.ServerID == id {
				j.Attempt++
				j.LeaseOwner = r.Owner
				out = append(out, *j)
			}
		}
	}
	return out, nil
}

func (m *memStore) ReleaseLease(_ context.Context, l pvekeep.Lease) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.released = append(m.released, l)
	return nil
}

func (m *memStore) ExtendLease(_ context.Context, l pvekeep.Lease, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lost[l.JobID] {
		return store.ErrLeaseLost
	}
	m.extended = append(m.extended, until)
	return nil
}

func (m *memStore) setState(id pvekeep.JobID, s pvekeep.JobState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.jobs {
		if m.jobs[i].ID == id {
			m.jobs[i].State = s
		}
	}
}

func newRunner(m *memStore) *Runner {
	return NewRunner(m, pvekeep.SystemClock{}, slog.New(slog.DiscardHandler), Config{Owner: "test", PollEvery: time.Millisecond})
}

var servers = map[int64]pvekeep.Server{1: {ID: 1, Host: "pve"}}

func TestRunAdvancesUntilEveryJobIsTerminal(t *testing.T) {
	t.Parallel()
	m := &memStore{jobs: []pvekeep.Job{
		{ID: 1, ServerID: 1, Kind: pvekeep.KindBackupCreate, State: pvekeep.JobRunning},
		{ID: 2, ServerID: 1, Kind: pvekeep.KindBackupCreate, State: pvekeep.JobRunning},
	}}
	calls := map[pvekeep.JobID]int{}
	r := newRunner(m)
	r.Handle(pvekeep.KindBackupCreate, func(_ context.Context, l pvekeep.Lease, j pvekeep.Job, srv pvekeep.Server) (pvekeep.JobState, error) {
		calls[j.ID]++
		if srv.Host != "pve" || l.Owner != "test" || l.JobID != j.ID {
			t.Errorf("step got lease %+v server %+v for job %d", l, srv, j.ID)
		}
		if calls[j.ID] == 3 { // job 1 succeeds on its third pass, job 2 fails
			state := pvekeep.JobSucceeded
			if j.ID == 2 {
				state = pvekeep.JobFailed
			}
			m.setState(j.ID, state)
			return state, nil
		}
		return pvekeep.JobRunning, nil
	})
	st, err := r.Run(context.Background(), servers, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if st.Succeeded != 1 || st.Failed != 1 || st.StillActive != 0 || st.Passes != 3 {
		t.Errorf("stats = %+v, want 1 succeeded, 1 failed, 3 passes, none active", st)
	}
	if len(m.released) != 4 { // each job released after its two non-final passes
		t.Errorf("released %d leases, want 4", len(m.released))
	}
}

func TestZeroBudgetMakesExactlyOnePass(t *testing.T) {
	t.Parallel()
	m := &memStore{jobs: []pvekeep.Job{{ID: 1, ServerID: 1, Kind: pvekeep.KindBackupCreate, State: pvekeep.JobRunning}}}
	r := newRunner(m)
	r.Handle(pvekeep.KindBackupCreate, func(context.Context, pvekeep.Lease, pvekeep.Job, pvekeep.Server) (pvekeep.JobState, error) {
		return pvekeep.JobRunning, nil
	})
	st, err := r.Run(context.Background(), servers, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Passes != 1 || st.StillActive != 1 {
		t.Errorf("stats = %+v, want one pass with the job still active", st)
	}
}

func TestStepErrorsAndPanicsDoNotStopOtherJobs(t *testing.T) {
	t.Parallel()
	m := &memStore{jobs: []pvekeep.Job{
		{ID: 1, ServerID: 1, Kind: pvekeep.KindBackupCreate, State: pvekeep.JobRunning},
		{ID: 2, ServerID: 1, Kind: pvekeep.KindBackupRemove, State: pvekeep.JobRunning},
		{ID: 3, ServerID: 1, Kind: "unknown.kind", State: pvekeep.JobRunning},
	}}
	r := newRunner(m)
	r.Handle(pvekeep.KindBackupCreate, func(context.Context, pvekeep.Lease, pvekeep.Job, pvekeep.Server) (pvekeep.JobState, error) {
		panic("boom")
	})
	var removeRan bool
	r.Handle(pvekeep.KindBackupRemove, func(_ context.Context, _ pvekeep.Lease, j pvekeep.Job, _ pvekeep.Server) (pvekeep.JobState, error) {
		removeRan = true
		m.setState(j.ID, pvekeep.JobSucceeded)
		return pvekeep.JobSucceeded, nil
	})
	st, err := r.Run(context.Background(), servers, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !removeRan || st.Succeeded != 1 || st.Errors != 2 {
		t.Errorf("stats = %+v (remove ran %v), want the remove to succeed and 2 errors", st, removeRan)
	}
}

func TestJobsOfServersNotHandedOverAreLeftAlone(t *testing.T) {
	t.Parallel()
	m := &memStore{jobs: []pvekeep.Job{{ID: 1, ServerID: 2, Kind: pvekeep.KindBackupCreate, State: pvekeep.JobRunning}}}
	r := newRunner(m)
	r.Handle(pvekeep.KindBackupCreate, func(context.Context, pvekeep.Lease, pvekeep.Job, pvekeep.Server) (pvekeep.JobState, error) {
		t.Error("a job of server 2 ran with only server 1 handed over")
		return pvekeep.JobRunning, nil
	})
	if _, err := r.Run(context.Background(), servers, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(context.Background(), nil, 0); err != nil {
		t.Fatal(err)
	}
	if len(m.claims) != 1 || len(m.claims[0].ServerIDs) != 1 || m.claims[0].ServerIDs[0] != 1 {
		t.Errorf("claims = %+v, want one claim for server 1 and none without servers", m.claims)
	}
}

func TestClaimFailureIsReturned(t *testing.T) {
	t.Parallel()
	m := &memStore{claimErr: store.ErrUnavailable}
	_, err := newRunner(m).Run(context.Background(), servers, time.Minute)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Run() error = %v, want ErrUnavailable", err)
	}
}

func TestCancelledContextEndsTheRun(t *testing.T) {
	t.Parallel()
	m := &memStore{jobs: []pvekeep.Job{{ID: 1, ServerID: 1, Kind: pvekeep.KindBackupCreate, State: pvekeep.JobRunning}}}
	r := NewRunner(m, pvekeep.SystemClock{}, slog.New(slog.DiscardHandler), Config{PollEvery: time.Hour})
	r.Handle(pvekeep.KindBackupCreate, func(context.Context, pvekeep.Lease, pvekeep.Job, pvekeep.Server) (pvekeep.JobState, error) {
		return pvekeep.JobRunning, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Stats)
	go func() {
		st, _ := r.Run(ctx, servers, 2*time.Hour)
		done <- st
	}()
	cancel()
	if st := <-done; st.Passes != 1 {
		t.Errorf("passes = %d, want the run to stop after the first pass", st.Passes)
	}
}

func TestSnoozedJobKeepsItsLeaseInsteadOfReleasingIt(t *testing.T) {
	t.Parallel()
	m := &memStore{jobs: []pvekeep.Job{{ID: 1, ServerID: 1, Kind: pvekeep.KindBackupCreate, State: pvekeep.JobQueued}}}
	r := newRunner(m)
	r.Handle(pvekeep.KindBackupCreate, func(context.Context, pvekeep.Lease, pvekeep.Job, pvekeep.Server) (pvekeep.JobState, error) {
		return pvekeep.JobQueued, Snooze(time.Minute, errors.New("answer lost"))
	})
	before := time.Now()
	if _, err := r.Run(context.Background(), servers, 0); err != nil {
		t.Fatal(err)
	}
	// one renewal before the step, then the snooze
	if len(m.released) != 0 || len(m.extended) != 2 || m.extended[1].Before(before.Add(59*time.Second)) {
		t.Errorf("released %v, extended %v; want the lease held for a minute", m.released, m.extended)
	}
}

func TestAJobTakenOverMidPassIsLeftAlone(t *testing.T) {
	t.Parallel()
	m := &memStore{jobs: []pvekeep.Job{{ID: 1, ServerID: 1, Kind: pvekeep.KindBackupCreate, State: pvekeep.JobRunning}},
		lost: map[pvekeep.JobID]bool{1: true}}
	r := newRunner(m)
	r.Handle(pvekeep.KindBackupCreate, func(context.Context, pvekeep.Lease, pvekeep.Job, pvekeep.Server) (pvekeep.JobState, error) {
		t.Error("the step ran on a job another runner holds")
		return pvekeep.JobRunning, nil
	})
	if _, err := r.Run(context.Background(), servers, 0); err != nil {
		t.Fatal(err)
	}
}
