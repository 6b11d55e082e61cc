package calendar

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"
	// The zone database is built in: which names are valid and where their
	// clocks jump must not depend on the panel host's tzdata package (the
	// binary is static and runs on whatever host the panel has).
	_ "time/tzdata"
)

// LoadZone reads an IANA zone name ("Europe/Berlin", "UTC"). Names Go
// accepts but that are no IANA zone names ("Local", "", a path) are
// refused: a schedule's zone must mean the same on every host.
func LoadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" || strings.HasPrefix(name, "/") || strings.Contains(name, "..") || len(name) > 64 {
		return nil, fmt.Errorf("time zone %q is not an IANA zone name", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time zone %q is not an IANA zone name: %w", name, err)
	}
	return loc, nil
}

// MinutesPerDay bounds a time of day in minutes.
const MinutesPerDay = 24 * 60

// Date is a civil (local calendar) date, without a zone.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf is the local date of t in loc.
func DateOf(t time.Time, loc *time.Location) Date {
	y, m, d := t.In(loc).Date()
	return Date{y, m, d}
}

// ParseDate reads "YYYY-MM-DD".
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("parse date %q: %w", s, err)
	}
	return Date{t.Year(), t.Month(), t.Day()}, nil
}

// String is "YYYY-MM-DD", the form the database stores.
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// AddDays is the date n days later (earlier for n < 0).
func (d Date) AddDays(n int) Date {
	t := time.Date(d.Year, d.Month, d.Day+n, 12, 0, 0, 0, time.UTC)
	return Date{t.Year(), t.Month(), t.Day()}
}

// Weekday of the date (the same in every zone: it is a civil date).
func (d Date) Weekday() time.Weekday {
	return time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC).Weekday()
}

// Before reports whether d is an earlier date than e.
func (d Date) Before(e Date) bool {
	if d.Year != e.Year {
		return d.Year < e.Year
	}
	if d.Month != e.Month {
		return d.Month < e.Month
	}
	return d.Day < e.Day
}

// Day is one weekday of a rule: whether it runs and at which local minute
// of the day (0 … 1439).
type Day struct {
	Enabled bool
	Minute  int
}

// Rule is a weekly schedule in a zone. Days is indexed by time.Weekday
// (0 = Sunday), like the database columns sun … sat.
type Rule struct {
	Loc  *time.Location
	Days [7]Day
}

// ErrNoLocation is a Rule without a zone: a caller's bug, never a guess.
var ErrNoLocation = errors.New("calendar: rule has no location")

// Validate checks the zone and every minute.
func (r Rule) Validate() error {
	if r.Loc == nil {
		return ErrNoLocation
	}
	for i, d := range r.Days {
		if d.Minute < 0 || d.Minute >= MinutesPerDay {
			return fmt.Errorf("calendar: %s minute %d is outside 0…%d", time.Weekday(i), d.Minute, MinutesPerDay-1)
		}
	}
	return nil
}

// Any reports whether at least one weekday is enabled.
func (r Rule) Any() bool {
	for _, d := range r.Days {
		if d.Enabled {
			return true
		}
	}
	return false
}

// Occurrence is one run of a rule: the local date it belongs to and the
// instant it becomes due.
type Occurrence struct {
	Date Date
	At   time.Time // UTC
}

// At is the instant the rule runs on local date d, and false when d's
// weekday is not enabled. See WallTime for gaps and repeats.
func (r Rule) At(d Date) (time.Time, bool) {
	day := r.Days[d.Weekday()]
	if !day.Enabled || r.Loc == nil {
		return time.Time{}, false
	}
	return WallTime(d, day.Minute, r.Loc), true
}

// DueOn reports whether the run of local date d is due at now: its
// weekday is enabled and its instant has passed. The instant is returned
// either way when the weekday is enabled.
func (r Rule) DueOn(d Date, now time.Time) (time.Time, bool) {
	at, ok := r.At(d)
	return at, ok && !at.After(now)
}

// Next is the first occurrence strictly after t; false when no weekday is
// enabled.
func (r Rule) Next(t time.Time) (Occurrence, bool) {
	if r.Loc == nil || !r.Any() {
		return Occurrence{}, false
	}
	today := DateOf(t, r.Loc)
	var best Occurrence
	found := false
	// From yesterday: a date's run can fall on the next local date (a
	// skipped day); to a week and a day on, which holds every weekday.
	for i := -1; i <= 8; i++ {
		d := today.AddDays(i)
		at, ok := r.At(d)
		if !ok || !at.After(t) {
			continue
		}
		if !found || at.Before(best.At) {
			best, found = Occurrence{Date: d, At: at}, true
		}
	}
	return best, found
}

// Latest is the last occurrence at or before now (the run due now, when
// nothing has run since); false when no weekday is enabled. However long
// the cron was away, this is the one run it owes: missed earlier dates are
// not made up for.
func (r Rule) Latest(now time.Time) (Occurrence, bool) {
	if r.Loc == nil || !r.Any() {
		return Occurrence{}, false
	}
	today := DateOf(now, r.Loc)
	var best Occurrence
	found := false
	for i := -8; i <= 1; i++ {
		d := today.AddDays(i)
		at, ok := r.At(d)
		if !ok || at.After(now) {
			continue
		}
		if !found || at.After(best.At) {
			best, found = Occurrence{Date: d, At: at}, true
		}
	}
	return best, found
}

// Step is what one tick decides for a schedule whose stored next run is
// nextAt: when nextAt has come, the run it owes (the latest occurrence at
// or before now, however many were missed) and, either way, the next run
// after now to store. A tick that finds nextAt still ahead owes nothing.
func (r Rule) Step(nextAt, now time.Time) (due Occurrence, isDue bool, next Occurrence, hasNext bool) {
	next, hasNext = r.Next(now)
	if nextAt.IsZero() || nextAt.After(now) {
		return Occurrence{}, false, next, hasNext
	}
	due, isDue = r.Latest(now)
	return due, isDue, next, hasNext
}

// WallTime is the instant at which loc's clocks show minute m of local
// date d. A wall time the clocks skip (spring forward) maps to the first
// instant after the gap, the moment the clocks jump; a wall time they show
// twice (fall back) maps to its first occurrence. Go's time.Date leaves
// both choices unspecified, so they are made here.
func WallTime(d Date, m int, loc *time.Location) time.Time {
	want := time.Date(d.Year, d.Month, d.Day, m/60, m%60, 0, 0, time.UTC) // the wall clock, read as if UTC
	offsets := nearbyOffsets(want, loc)
	var best time.Time
	for _, o := range offsets {
		u := want.Add(-time.Duration(o) * time.Second)
		if wall(u, loc).Equal(want) && (best.IsZero() || u.Before(best)) {
			best = u
		}
	}
	if !best.IsZero() {
		return best.UTC()
	}
	// In a gap: the clocks jump over want at some transition. Of the
	// instants that read later than want, the first is that transition.
	for _, o := range offsets {
		u := want.Add(-time.Duration(o) * time.Second)
		start, _ := u.In(loc).ZoneBounds()
		if start.IsZero() {
			continue
		}
		if wall(start, loc).After(want) && !wall(start.Add(-time.Nanosecond), loc).After(want) && (best.IsZero() || start.Before(best)) {
			best = start
		}
	}
	if !best.IsZero() {
		return best.UTC()
	}
	return time.Date(d.Year, d.Month, d.Day, m/60, m%60, 0, 0, loc).UTC() // unreachable with real zone data
}

// wall is what loc's clocks show at u, as a UTC time.
func wall(u time.Time, loc *time.Location) time.Time {
	l := u.In(loc)
	y, mo, d := l.Date()
	h, mi, s := l.Clock()
	return time.Date(y, mo, d, h, mi, s, l.Nanosecond(), time.UTC)
}

// nearbyOffsets are the distinct UTC offsets (seconds) loc uses within a
// day and a half of want: every offset a wall time on want's date can
// carry (real zones are at most 14 h from UTC, and a transition moves
// the clocks by at most a day).
func nearbyOffsets(want time.Time, loc *time.Location) []int {
	var out []int
	for h := -36; h <= 36; h += 3 {
		_, o := want.Add(time.Duration(h) * time.Hour).In(loc).Zone()
		seen := false
		for _, x := range out {
			seen = seen || x == o
		}
		if !seen {
			out = append(out, o)
		}
	}
	return out
}

// ParseHHMM reads a local time "HH:MM" (00:00 … 23:59) as minutes.
func ParseHHMM(s string) (int, error) {
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Errorf("time %q is not HH:MM", s)
	}
	h, err1 := strconv.Atoi(s[:2])
	m, err2 := strconv.Atoi(s[3:])
	if err1 != nil || err2 != nil || s[0] == '+' || s[3] == '+' || s[0] == '-' || s[3] == '-' || h < 0 || h > 23 || m < 0 || m > 59 {
		return 0, fmt.Errorf("time %q is not HH:MM", s)
	}
	return h*60 + m, nil
}

// FormatHHMM writes minutes as "HH:MM".
func FormatHHMM(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }

// Window is an admin's window for scheduled backups: Start inclusive, End
// exclusive, in minutes of the local day; End before Start crosses
// midnight. (plan.ParseMore reads it from the product's schedule_window.)
type Window struct {
	Start, End int
}

// Len is the window's length in minutes.
func (w Window) Len() int { return ((w.End-w.Start)%MinutesPerDay + MinutesPerDay) % MinutesPerDay }

// Pick is the stable minute of the day inside the window for key (a
// service id): the same key always gets the same minute, and keys spread
// evenly over the window, so a fleet's backups do not all start at once.
func (w Window) Pick(key int64) int {
	h := fnv.New64a()
	var b [8]byte
	for i := range b {
		b[i] = byte(uint64(key) >> (8 * i))
	}
	_, _ = h.Write(b[:])
	return (w.Start + int(h.Sum64()%uint64(w.Len()))) % MinutesPerDay
}

// InWindow puts every day of r at the window's minute for key, keeping
// which days are enabled.
func (r Rule) InWindow(w Window, key int64) Rule {
	m := w.Pick(key)
	for i := range r.Days {
		r.Days[i].Minute = m
	}
	return r
}
