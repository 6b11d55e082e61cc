package store_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/store"
)

func TestScheduleSaveReadReplace(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	if _, ok, err := s.Schedule(ctx, b.service(0)); err != nil || ok {
		t.Fatalf("before saving: ok=%v err=%v", ok, err)
	}
	next := t0.Add(time.Hour)
	sc := store.Schedule{ServiceID: b.service(0), Timezone: "Europe/Berlin", NextRunAt: &next}
	sc.Days[time.Monday] = store.ScheduleDay{Enabled: true, Time: "03:30"}
	sc.Days[time.Saturday] = store.ScheduleDay{Enabled: true, Time: "23:59"}
	if err := s.PutSchedule(ctx, sc, t0); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Schedule(ctx, b.service(0))
	if err != nil || !ok {
		t.Fatalf("read: ok=%v err=%v", ok, err)
	}
	if got.Timezone != "Europe/Berlin" || got.Days[time.Monday] != sc.Days[time.Monday] || got.Days[time.Saturday] != sc.Days[time.Saturday] ||
		got.Days[time.Sunday] != (store.ScheduleDay{Time: "00:00"}) || got.NextRunAt == nil || !got.NextRunAt.Equal(next.Truncate(time.Microsecond)) {
		t.Errorf("read back %+v", got)
	}
	// Replace: everything off, created_at kept.
	later := t0.Add(time.Minute)
	if err := s.PutSchedule(ctx, store.Schedule{ServiceID: b.service(0), Timezone: "UTC"}, later); err != nil {
		t.Fatal(err)
	}
	got2, _, _ := s.Schedule(ctx, b.service(0))
	if got2.Timezone != "UTC" || got2.Days[time.Monday].Enabled || got2.NextRunAt != nil || !got2.CreatedAt.Equal(got.CreatedAt) || !got2.UpdatedAt.Equal(later.Truncate(time.Microsecond)) {
		t.Errorf("after replace %+v", got2)
	}
}

func TestPutScheduleRefusesBadInput(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	tests := []struct {
		name string
		day  store.ScheduleDay
		tz   string
	}{
		{name: "hour 24", day: store.ScheduleDay{Enabled: true, Time: "24:00"}, tz: "UTC"},
		{name: "no leading zero", day: store.ScheduleDay{Enabled: true, Time: "3:30"}, tz: "UTC"},
		{name: "seconds", day: store.ScheduleDay{Enabled: true, Time: "03:30:00"}, tz: "UTC"},
		{name: "empty time zone", day: store.ScheduleDay{Enabled: true, Time: "03:30"}, tz: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := store.Schedule{ServiceID: b.service(0), Timezone: tc.tz}
			sc.Days[time.Tuesday] = tc.day
			if err := s.PutSchedule(context.Background(), sc, t0); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestDueSchedulesAdvanceExactlyOnceUnderOverlappingCrons(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	due, notYet := t0.Add(-time.Minute), t0.Add(time.Minute)
	for i, next := range []*time.Time{&due, &notYet, nil} {
		sc := store.Schedule{ServiceID: b.service(i), Timezone: "UTC", NextRunAt: next}
		sc.Days[time.Sunday] = store.ScheduleDay{Enabled: next != nil, Time: "01:29"}
		if err := s.PutSchedule(ctx, sc, t0.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.DueSchedules(ctx, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ServiceID != b.service(0) {
		t.Fatalf("due: %+v, want only service 0", list)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	following := due.Add(7 * 24 * time.Hour)
	for range 5 {
		wg.Go(func() {
			ok, err := s.AdvanceSchedule(ctx, b.service(0), *list[0].NextRunAt, t0, &following)
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d crons advanced the schedule, want exactly 1", wins.Load())
	}
	if list, _ := s.DueSchedules(ctx, t0, 0); len(list) != 0 {
		t.Errorf("still due after advancing: %+v", list)
	}
	got, _, _ := s.Schedule(ctx, b.service(0))
	if got.LastRunAt == nil || !got.LastRunAt.Equal(t0.Truncate(time.Microsecond)) {
		t.Errorf("last run %v", got.LastRunAt)
	}
}
