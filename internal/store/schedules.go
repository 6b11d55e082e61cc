package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pvekeep/pvekeep/internal/lazyre"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// ScheduleDay is one weekday of a weekly backup schedule.
type ScheduleDay struct {
	Enabled bool
	Time    string // "HH:MM", local to the schedule's time zone
}

// Schedule is a service's weekly backup schedule (mod_pvekeep_schedules).
// Computing NextRunAt (DST-correct, in Timezone) is the service layer's
// job; the store keeps it and finds due schedules by it.
type Schedule struct {
	ServiceID pvekeep.ServiceID
	Timezone  string         // IANA name, e.g. "Europe/Berlin"
	Days      [7]ScheduleDay // indexed by time.Weekday: 0 = Sunday
	NextRunAt *time.Time     // nil = nothing enabled
	LastRunAt *time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

var hhmm = lazyre.New(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)

const scheduleDayColumns = `service_id, timezone,
sun_enabled, sun_time, mon_enabled, mon_time, tue_enabled, tue_time, wed_enabled, wed_time,
thu_enabled, thu_time, fri_enabled, fri_time, sat_enabled, sat_time`

const scheduleColumns = scheduleDayColumns + `, next_run_at, last_run_at, created_at, updated_at`

type scanner interface{ Scan(dest ...any) error }

func scanSchedule(r scanner) (Schedule, error) {
	var sc Schedule
	dest := []any{&sc.ServiceID, &sc.Timezone}
	for i := range sc.Days {
		dest = append(dest, &sc.Days[i].Enabled, &sc.Days[i].Time)
	}
	dest = append(dest, &sc.NextRunAt, &sc.LastRunAt, &sc.CreatedAt, &sc.UpdatedAt)
	err := r.Scan(dest...)
	return sc, err
}

// Schedule reads the service's schedule; ok is false when it has none.
func (s *Store) Schedule(ctx context.Context, id pvekeep.ServiceID) (Schedule, bool, error) {
	sc, err := scanSchedule(s.db.QueryRowContext(ctx, "SELECT "+scheduleColumns+" FROM mod_pvekeep_schedules WHERE service_id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Schedule{}, false, nil
	}
	if err != nil {
		return Schedule{}, false, fmt.Errorf("read schedule of service %d: %w", id, classify(err))
	}
	return sc, true, nil
}

// PutSchedule creates or replaces the service's schedule (days, time zone,
// next run) at time now; created_at and last_run_at are kept.
func (s *Store) PutSchedule(ctx context.Context, sc Schedule, now time.Time) error {
	if sc.ServiceID <= 0 || sc.Timezone == "" || now.IsZero() {
		return fmt.Errorf("save schedule of service %d: service id, time zone and now are required", sc.ServiceID)
	}
	args := []any{sc.ServiceID, sc.Timezone}
	for i, d := range sc.Days {
		t := d.Time
		if t == "" {
			t = "00:00"
		}
		if !hhmm.MatchString(t) {
			return fmt.Errorf("save schedule of service %d: %s time %q is not HH:MM", sc.ServiceID, time.Weekday(i), d.Time)
		}
		args = append(args, d.Enabled, t)
	}
	args = append(args, dbTimePtr(sc.NextRunAt), dbTime(now), dbTime(now))
	_, err := s.db.ExecContext(ctx, `INSERT INTO mod_pvekeep_schedules (`+scheduleDayColumns+`, next_run_at, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON DUPLICATE KEY UPDATE timezone = VALUES(timezone),
sun_enabled = VALUES(sun_enabled), sun_time = VALUES(sun_time),
mon_enabled = VALUES(mon_enabled), mon_time = VALUES(mon_time),
tue_enabled = VALUES(tue_enabled), tue_time = VALUES(tue_time),
wed_enabled = VALUES(wed_enabled), wed_time = VALUES(wed_time),
thu_enabled = VALUES(thu_enabled), thu_time = VALUES(thu_time),
fri_enabled = VALUES(fri_enabled), fri_time = VALUES(fri_time),
sat_enabled = VALUES(sat_enabled), sat_time = VALUES(sat_time),
next_run_at = VALUES(next_run_at), updated_at = VALUES(updated_at)`, args...)
	if err != nil {
		return fmt.Errorf("save schedule of service %d: %w", sc.ServiceID, classify(err))
	}
	return nil
}

// DueSchedules lists schedules whose next run is at or before now, the
// longest overdue first, at most limit (0 = 100).
func (s *Store) DueSchedules(ctx context.Context, now time.Time, limit int) ([]Schedule, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+scheduleColumns+` FROM mod_pvekeep_schedules
WHERE next_run_at IS NOT NULL AND next_run_at <= ? ORDER BY next_run_at, service_id LIMIT ?`, dbTime(now), limit)
	if err != nil {
		return nil, fmt.Errorf("list due schedules: %w", classify(err))
	}
	defer rows.Close()
	out := []Schedule{}
	for rows.Next() {
		sc, err := scanSchedule(rows)
		if err != nil {
			return nil, fmt.Errorf("list due schedules: %w", classify(err))
		}
		out = append(out, sc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list due schedules: %w", classify(err))
	}
	return out, nil
}

// AdvanceSchedule moves a due schedule on: last_run_at = ranAt, next_run_at
// = next (nil = nothing enabled any more), but only if next_run_at still
// equals expect. Of several overlapping crons that saw the same due
// schedule exactly one gets true and dispatches the run.
func (s *Store) AdvanceSchedule(ctx context.Context, id pvekeep.ServiceID, expect time.Time, ranAt time.Time, next *time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE mod_pvekeep_schedules
SET last_run_at = ?, next_run_at = ?, updated_at = ?
WHERE service_id = ? AND next_run_at = ?`, dbTime(ranAt), dbTimePtr(next), dbTime(ranAt), id, dbTime(expect))
	if err != nil {
		return false, fmt.Errorf("advance schedule of service %d: %w", id, classify(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("advance schedule of service %d: %w", id, classify(err))
	}
	return n == 1, nil
}
