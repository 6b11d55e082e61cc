// Package calendar is the pure arithmetic of weekly backup schedules: on
// which local dates a schedule runs, at which instant (DST-correct, in the
// schedule's IANA zone), which run is due now and when the next one comes.
// It does no I/O and never reads the clock: every function is handed the
// instant it reasons about, so callers inject their clock and tests step
// through any date, zone and transition they like.
//
// Decisions (issue 9, DESIGN §5 "Scheduled backup"):
//
//   - A run belongs to a local date: the weekday the customer ticked, in the
//     schedule's zone. That date is the run's identity (the database keys
//     runs by service and date), so a date runs at most once whatever the
//     clocks do.
//   - A wall time that does not exist on that date (the hour skipped on a
//     spring-forward day) runs once at the next valid instant, the moment
//     the clocks jump (02:30 in Europe/Berlin on the last Sunday of March
//     runs at 03:00 CEST).
//   - A wall time that happens twice (the hour repeated on a fall-back day)
//     runs once, at its first occurrence.
//   - After an outage of several days only the latest missed run is due:
//     one backup when the cron comes back, not one per missed day.
//   - An admin window (the product's schedule_window, "HH:MM-HH:MM") replaces
//     the customer's times with one stable minute per service inside it,
//     spreading a fleet's backups over the window. A window may cross
//     midnight; the picked time applies to the ticked weekday itself.
package calendar
