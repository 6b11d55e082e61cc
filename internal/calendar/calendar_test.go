package calendar_test

import (
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/calendar"
)

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := calendar.LoadZone(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func date(s string) calendar.Date {
	d, err := calendar.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

// rule builds a rule from "mon=03:00" style days.
func rule(t *testing.T, loc *time.Location, days map[time.Weekday]string) calendar.Rule {
	t.Helper()
	r := calendar.Rule{Loc: loc}
	for wd, hhmm := range days {
		m, err := calendar.ParseHHMM(hhmm)
		if err != nil {
			t.Fatal(err)
		}
		r.Days[wd] = calendar.Day{Enabled: true, Minute: m}
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	return r
}

func daily(t *testing.T, loc *time.Location, hhmm string) calendar.Rule {
	days := map[time.Weekday]string{}
	for wd := time.Sunday; wd <= time.Saturday; wd++ {
		days[wd] = hhmm
	}
	return rule(t, loc, days)
}

// ticks runs the decision a cron makes every `every` from `from` to `to`
// (what service's scheduler does with the database): a run is taken when
// Step says one is due and its date has not run yet. It returns the runs
// taken, in order, with the tick instant that took each.
type run struct {
	date calendar.Date
	at   time.Time // the tick that took it
}

func ticks(r calendar.Rule, from, to time.Time, every time.Duration) []run {
	done := map[calendar.Date]bool{}
	var out []run
	first, ok := r.Next(from.Add(-time.Nanosecond))
	if !ok {
		return nil
	}
	nextAt := first.At
	for now := from; !now.After(to); now = now.Add(every) {
		due, isDue, next, _ := r.Step(nextAt, now)
		if !isDue {
			continue
		}
		if !done[due.Date] {
			done[due.Date] = true
			out = append(out, run{date: due.Date, at: now})
		}
		nextAt = next.At
	}
	return out
}

func TestWeekdayRuleAcrossAWeek(t *testing.T) {
	t.Parallel()
	// Monday 03:00, Wednesday 23:59, Saturday 00:00 in UTC; the week of
	// Sunday 2026-03-01.
	r := rule(t, time.UTC, map[time.Weekday]string{time.Monday: "03:00", time.Wednesday: "23:59", time.Saturday: "00:00"})
	tests := []struct {
		name     string
		now      string
		wantNext string
		dueToday bool // the run of now's date is due at now
	}{
		{"sunday: nothing today, monday next", "2026-03-01T12:00:00Z", "2026-03-02T03:00:00Z", false},
		{"monday before the time", "2026-03-02T02:59:59Z", "2026-03-02T03:00:00Z", false},
		{"monday at the time: due, next wednesday", "2026-03-02T03:00:00Z", "2026-03-04T23:59:00Z", true},
		{"tuesday: not enabled", "2026-03-03T10:00:00Z", "2026-03-04T23:59:00Z", false},
		{"wednesday a minute before midnight", "2026-03-04T23:58:00Z", "2026-03-04T23:59:00Z", false},
		{"wednesday 23:59 due", "2026-03-04T23:59:30Z", "2026-03-07T00:00:00Z", true},
		{"thursday, friday: nothing", "2026-03-06T23:59:59Z", "2026-03-07T00:00:00Z", false},
		{"saturday midnight due", "2026-03-07T00:00:00Z", "2026-03-09T03:00:00Z", true},
		{"saturday evening: next monday", "2026-03-07T22:00:00Z", "2026-03-09T03:00:00Z", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			now := utc(tc.now)
			next, ok := r.Next(now)
			if !ok || !next.At.Equal(utc(tc.wantNext)) {
				t.Errorf("Next(%s) = %v %v, want %s", tc.now, next.At, ok, tc.wantNext)
			}
			if _, due := r.DueOn(calendar.DateOf(now, time.UTC), now); due != tc.dueToday {
				t.Errorf("DueOn(today) = %v, want %v", due, tc.dueToday)
			}
		})
	}
	// A week of ticks every 5 minutes takes exactly the three runs, each at
	// the first tick at or after its time.
	got := ticks(r, utc("2026-03-01T00:00:00Z"), utc("2026-03-07T23:55:00Z"), 5*time.Minute)
	want := []run{
		{date("2026-03-02"), utc("2026-03-02T03:00:00Z")},
		{date("2026-03-04"), utc("2026-03-05T00:00:00Z")},
		{date("2026-03-07"), utc("2026-03-07T00:00:00Z")},
	}
	if len(got) != len(want) {
		t.Fatalf("runs %v, want %v", got, want)
	}
	for i := range want {
		if got[i].date != want[i].date || !got[i].at.Equal(want[i].at) {
			t.Errorf("run %d = %v at %v, want %v at %v", i, got[i].date, got[i].at, want[i].date, want[i].at)
		}
	}
}

func TestZonesFarFromUTC(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		zone   string
		day    time.Weekday
		hhmm   string
		now    string
		want   string // next run, UTC
		wantOn string // its local date
	}{
		// UTC+14: Monday 01:00 local is Sunday 11:00 UTC, so on a UTC
		// Sunday morning the next run is that same UTC day.
		{"kiritimati monday is a utc sunday", "Pacific/Kiritimati", time.Monday, "01:00", "2026-03-01T09:00:00Z", "2026-03-01T11:00:00Z", "2026-03-02"},
		{"kiritimati after it ran", "Pacific/Kiritimati", time.Monday, "01:00", "2026-03-01T11:00:00Z", "2026-03-08T11:00:00Z", "2026-03-09"},
		// UTC-11: Sunday 22:00 local is Monday 09:00 UTC.
		{"pago pago sunday is a utc monday", "Pacific/Pago_Pago", time.Sunday, "22:00", "2026-03-02T08:00:00Z", "2026-03-02T09:00:00Z", "2026-03-01"},
		// Chatham runs 12:45/13:45 from UTC: quarter-hour offsets, and
		// southern-hemisphere DST (+13:45 in March).
		{"chatham quarter-hour offset in dst", "Pacific/Chatham", time.Tuesday, "06:30", "2026-03-01T00:00:00Z", "2026-03-02T16:45:00Z", "2026-03-03"},
		{"chatham standard time in july", "Pacific/Chatham", time.Tuesday, "06:30", "2026-07-01T00:00:00Z", "2026-07-06T17:45:00Z", "2026-07-07"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := rule(t, zone(t, tc.zone), map[time.Weekday]string{tc.day: tc.hhmm})
			next, ok := r.Next(utc(tc.now))
			if !ok || !next.At.Equal(utc(tc.want)) || next.Date != date(tc.wantOn) {
				t.Errorf("Next = %v on %v (%v), want %s on %s", next.At, next.Date, ok, tc.want, tc.wantOn)
			}
		})
	}
}

func TestDaySkippedByTheZoneRunsOnceAtTheNextValidInstant(t *testing.T) {
	t.Parallel()
	// Kiritimati moved from UTC-10:40 to UTC+14 at the end of 1994: its
	// clocks never showed 1994-12-31. The run owed for that Saturday is
	// taken once, at the first instant after the jump.
	loc := zone(t, "Pacific/Kiritimati")
	r := daily(t, loc, "10:00")
	at, ok := r.At(date("1994-12-31"))
	if !ok || !at.Equal(utc("1994-12-31T10:00:00Z")) {
		t.Fatalf("At(1994-12-31) = %v, want the jump, 1995-01-01 00:00 local = 1994-12-31T10:00Z", at)
	}
	got := ticks(r, utc("1994-12-29T00:00:00Z"), utc("1995-01-02T00:00:00Z"), 15*time.Minute)
	seen := map[calendar.Date]int{}
	for _, x := range got {
		seen[x.date]++
	}
	for d, n := range seen {
		if n != 1 {
			t.Errorf("date %v ran %d times", d, n)
		}
	}
	if seen[date("1994-12-31")] != 1 || seen[date("1995-01-01")] != 1 {
		t.Errorf("runs %v: want one for the skipped date and one for the next", got)
	}
}

func TestDSTTransitions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		zone  string
		date  string
		hhmm  string
		want  string // the instant the date's run is due
		ticks int    // runs of that date over the whole day, ticking every minute
	}{
		{"berlin spring forward: 02:30 does not exist, runs at 03:00 CEST", "Europe/Berlin", "2026-03-29", "02:30", "2026-03-29T01:00:00Z", 1},
		{"berlin spring forward: 02:00 does not exist either", "Europe/Berlin", "2026-03-29", "02:00", "2026-03-29T01:00:00Z", 1},
		{"berlin spring forward: 03:00 is the same instant", "Europe/Berlin", "2026-03-29", "03:00", "2026-03-29T01:00:00Z", 1},
		{"berlin spring forward: 01:59 still CET", "Europe/Berlin", "2026-03-29", "01:59", "2026-03-29T00:59:00Z", 1},
		{"berlin fall back: 02:30 happens twice, runs at the first", "Europe/Berlin", "2026-10-25", "02:30", "2026-10-25T00:30:00Z", 1},
		{"berlin fall back: 03:00 only once, CET", "Europe/Berlin", "2026-10-25", "03:00", "2026-10-25T02:00:00Z", 1},
		{"new york spring forward: 02:30 does not exist, runs at 03:00 EDT", "America/New_York", "2026-03-08", "02:30", "2026-03-08T07:00:00Z", 1},
		{"new york fall back: 01:30 happens twice, runs at the first (EDT)", "America/New_York", "2026-11-01", "01:30", "2026-11-01T05:30:00Z", 1},
		{"new york fall back: 00:59 before the repeat", "America/New_York", "2026-11-01", "00:59", "2026-11-01T04:59:00Z", 1},
		{"new york fall back: 02:00 after the repeat (EST)", "America/New_York", "2026-11-01", "02:00", "2026-11-01T07:00:00Z", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			loc := zone(t, tc.zone)
			r := daily(t, loc, tc.hhmm)
			d := date(tc.date)
			at, ok := r.At(d)
			if !ok || !at.Equal(utc(tc.want)) {
				t.Fatalf("At(%s %s) = %v, want %s", tc.date, tc.hhmm, at, tc.want)
			}
			if _, due := r.DueOn(d, at.Add(-time.Second)); due {
				t.Errorf("due a second early")
			}
			if _, due := r.DueOn(d, at); !due {
				t.Errorf("not due at its instant")
			}
			// Tick every minute from the day before to the day after: the
			// date runs exactly once, at its instant.
			got := ticks(r, at.Add(-30*time.Hour), at.Add(30*time.Hour), time.Minute)
			n := 0
			for _, x := range got {
				if x.date == d {
					n++
					if !x.at.Equal(at) {
						t.Errorf("ran at %v, want %v", x.at, at)
					}
				}
			}
			if n != tc.ticks {
				t.Errorf("the date ran %d times, want %d (runs %v)", n, tc.ticks, got)
			}
			// And the neighbouring dates each ran once too, 23, 24 or 25 h apart.
			for i := 1; i < len(got); i++ {
				gap := got[i].at.Sub(got[i-1].at)
				if gap < 22*time.Hour || gap > 26*time.Hour {
					t.Errorf("runs %v and %v are %v apart", got[i-1], got[i], gap)
				}
			}
		})
	}
}

func TestOutageOfSeveralDaysOwesOneRun(t *testing.T) {
	t.Parallel()
	loc := zone(t, "Europe/Berlin")
	r := daily(t, loc, "03:00")
	// The last run stored Monday 03:00 as next; the cron was away until
	// Thursday 10:00 local.
	nextAt, _ := r.At(date("2026-06-01"))
	now := utc("2026-06-04T08:00:00Z")
	due, isDue, next, _ := r.Step(nextAt, now)
	if !isDue || due.Date != date("2026-06-04") {
		t.Fatalf("Step = %v %v, want Thursday's run due", due, isDue)
	}
	if want := utc("2026-06-05T01:00:00Z"); !next.At.Equal(want) {
		t.Errorf("next = %v, want Friday 03:00 CEST %v", next.At, want)
	}
	// The cron back, ticking every 5 minutes until Friday noon: Thursday's
	// run once, then Friday's; none for Monday to Wednesday.
	var runs []calendar.Date
	done := map[calendar.Date]bool{}
	for t := now; t.Before(utc("2026-06-05T10:00:00Z")); t = t.Add(5 * time.Minute) {
		d, ok, n, _ := r.Step(nextAt, t)
		if ok && !done[d.Date] {
			done[d.Date] = true
			runs = append(runs, d.Date)
		}
		if ok {
			nextAt = n.At
		}
	}
	if len(runs) != 2 || runs[0] != date("2026-06-04") || runs[1] != date("2026-06-05") {
		t.Errorf("runs %v, want 2026-06-04 then 2026-06-05", runs)
	}
	// An outage that ends before Thursday's time owes Wednesday's run.
	due, isDue, _, _ = r.Step(nextAt.AddDate(0, 0, -4), utc("2026-06-04T00:30:00Z"))
	if !isDue || due.Date != date("2026-06-03") {
		t.Errorf("early return: due %v %v, want Wednesday's", due, isDue)
	}
}

func TestStepBeforeTheNextRunOwesNothing(t *testing.T) {
	t.Parallel()
	r := daily(t, time.UTC, "03:00")
	_, isDue, next, ok := r.Step(utc("2026-06-02T03:00:00Z"), utc("2026-06-02T02:59:00Z"))
	if isDue || !ok || !next.At.Equal(utc("2026-06-02T03:00:00Z")) {
		t.Errorf("isDue %v next %v", isDue, next)
	}
	if _, ok := (calendar.Rule{Loc: time.UTC}).Next(utc("2026-06-02T03:00:00Z")); ok {
		t.Error("a rule with no day enabled has a next run")
	}
}

func TestParseHHMM(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"00:00", 0, true}, {"23:59", 1439, true}, {"03:30", 210, true},
		{"24:00", 0, false}, {"3:30", 0, false}, {"03:60", 0, false}, {"03:30:00", 0, false},
		{"+3:30", 0, false}, {"03:+3", 0, false}, {"-1:00", 0, false}, {"", 0, false}, {"ab:cd", 0, false},
	}
	for _, tc := range tests {
		got, err := calendar.ParseHHMM(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseHHMM(%q) = %d, %v", tc.in, got, err)
		}
		if tc.ok && calendar.FormatHHMM(got) != tc.in {
			t.Errorf("FormatHHMM(%d) = %q", got, calendar.FormatHHMM(got))
		}
	}
}

func TestLoadZoneAcceptsOnlyIANANames(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"UTC", "Europe/Berlin", "America/New_York", "Pacific/Chatham", "Asia/Kolkata"} {
		if _, err := calendar.LoadZone(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Local", "Mars/Olympus", "/etc/localtime", "../../etc/passwd", "Europe/Berlin ", "CEST+2"} {
		if _, err := calendar.LoadZone(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestWindowPicksAStableSpreadTime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		w    calendar.Window
		n    int
	}{
		{"01:00-05:00", calendar.Window{Start: 60, End: 300}, 240},
		{"22:00-02:00 crosses midnight", calendar.Window{Start: 1320, End: 120}, 240},
		{"00:00-00:30", calendar.Window{Start: 0, End: 30}, 30},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := tc.w
			if w.Len() != tc.n {
				t.Fatalf("Len = %d, want %d", w.Len(), tc.n)
			}
			hits := map[int]int{}
			for key := int64(1); key <= 20000; key++ {
				m := w.Pick(key)
				if off := ((m-w.Start)%calendar.MinutesPerDay + calendar.MinutesPerDay) % calendar.MinutesPerDay; off >= w.Len() {
					t.Fatalf("key %d got %s, outside %s", key, calendar.FormatHHMM(m), tc.name)
				}
				if w.Pick(key) != m {
					t.Fatalf("key %d: not stable", key)
				}
				hits[m]++
			}
			// 20,000 services over the window: every minute used, none more
			// than twice its fair share.
			fair := 20000 / w.Len()
			for m := range w.Len() {
				minute := (w.Start + m) % calendar.MinutesPerDay
				if hits[minute] == 0 || hits[minute] > 2*fair {
					t.Errorf("minute %s has %d services (fair %d)", calendar.FormatHHMM(minute), hits[minute], fair)
				}
			}
		})
	}
	r := daily(t, time.UTC, "12:00").InWindow(calendar.Window{Start: 60, End: 120}, 42)
	for _, d := range r.Days {
		if d.Minute < 60 || d.Minute >= 120 || d.Minute != r.Days[0].Minute || !d.Enabled {
			t.Errorf("InWindow day %+v", d)
		}
	}
}
