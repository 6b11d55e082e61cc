package pvesim

import "time"

// snapshot is one [snapname] section of a VM config.
type snapshot struct {
	conf     map[string]string // the config at snapshot time, with snaptime, description, parent
	snaptime time.Time
}
