package pvesim

import (
	"github.com/pvekeep/pvekeep/internal/lazyre"

	"fmt"
	"math"
	"strings"
	"time"
)

// renderBytes is PVE::Format::render_bytes ("4.2 GiB").
func renderBytes(value float64, precision int) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	unit := 0
	if value > 1023 {
		unit = int(math.Log(value) / math.Log(1024))
		if unit >= len(units) {
			unit = len(units) - 1
		}
		value /= math.Pow(1024, float64(unit))
	}
	if precision == 0 {
		precision = 2
	}
	return fmt.Sprintf("%.*f %s", precision, value, units[unit])
}

// renderDuration is PVE::Format::render_duration ("1m 5s").
func renderDuration(secs int64) string {
	if secs <= 0 {
		return "0s"
	}
	var parts []string
	for _, u := range []struct {
		name string
		len  int64
	}{{"w", 7 * 86400}, {"d", 86400}, {"h", 3600}, {"m", 60}, {"s", 1}} {
		if v := secs / u.len; v > 0 {
			parts = append(parts, fmt.Sprintf("%d%s", v, u.name))
			secs -= v * u.len
		}
	}
	return strings.Join(parts, " ")
}

// vzdumpFormatSize is PVE::VZDump::format_size ("1.23GB").
func vzdumpFormatSize(size int64) string {
	kb := float64(size) / 1024
	if kb < 1024 {
		return fmt.Sprintf("%dKB", int64(kb))
	}
	mb := float64(size) / (1024 * 1024)
	if mb < 1024 {
		return fmt.Sprintf("%dMB", int64(mb))
	}
	gb := mb / 1024
	if gb < 1024 {
		return fmt.Sprintf("%.2fGB", gb)
	}
	return fmt.Sprintf("%.2fTB", gb/1024)
}

// vzdumpFormatTime is PVE::VZDump::format_time ("00:01:05").
func vzdumpFormatTime(d time.Duration) string {
	secs := int64(d.Seconds())
	return fmt.Sprintf("%02d:%02d:%02d", secs/3600, secs%3600/60, secs%60)
}

// strftime renders "%F %H:%M:%S".
func strftime(t time.Time) string { return t.Format("2006-01-02 15:04:05") }

var reShellSafe = lazyre.New(`^[\w!%+,\-./:=@^]+$`)

// shellQuote is String::ShellQuote::shell_quote for one word.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	if reShellSafe.MatchString(s) {
		return s
	}
	q := "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	q = strings.TrimPrefix(q, "''")
	q = strings.TrimSuffix(q, "''")
	return q
}
