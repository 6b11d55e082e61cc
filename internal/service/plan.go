package service

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// Product module settings (tblproducts.configoptionN, index N-1). The
// numbering is public (DESIGN §8): never reorder once released.
const (
	settingBackupStorage     = 0 // configoption1
	settingBackupsQuota      = 1 // configoption2
	settingSnapshotsQuota    = 2 // configoption3
	settingSnapshotLifetimeD = 3 // configoption4
)

// Configurable option names that override product settings (DESIGN §5).
const (
	optionBackups   = "Backups"
	optionSnapshots = "Snapshots"
)

// Plan is the part of the purchased package the backup and snapshot rules
// need: product settings, overridden by the service's configurable options.
type Plan struct {
	BackupStorage string
	BackupsMax    int
	SnapshotsMax  int
	// SnapshotLifetimeDays is 0 for "keep".
	SnapshotLifetimeDays int
}

// planFor reads the plan from what the panel sells. A malformed number is
// the provider's misconfiguration, reported as invalid_state so that the
// client sees a clear refusal instead of a silently different quota.
func planFor(f pvekeep.ServiceFacts) (Plan, error) {
	p := Plan{BackupStorage: strings.TrimSpace(f.ProductSettings[settingBackupStorage])}
	var err error
	if p.BackupsMax, err = quota(f, optionBackups, settingBackupsQuota); err != nil {
		return Plan{}, err
	}
	if p.SnapshotsMax, err = quota(f, optionSnapshots, settingSnapshotsQuota); err != nil {
		return Plan{}, err
	}
	if p.SnapshotLifetimeDays, err = count(f.ProductSettings[settingSnapshotLifetimeD]); err != nil {
		return Plan{}, misconfigured("configoption4 (snapshot lifetime)", err)
	}
	return p, nil
}

func quota(f pvekeep.ServiceFacts, option string, setting int) (int, error) {
	if v, ok := f.ConfigOptions[option]; ok {
		n, err := count(v)
		if err != nil {
			return 0, misconfigured("configurable option "+option, err)
		}
		return n, nil
	}
	n, err := count(f.ProductSettings[setting])
	if err != nil {
		return 0, misconfigured(fmt.Sprintf("configoption%d", setting+1), err)
	}
	return n, nil
}

// count parses a non-negative count; empty means 0 (feature off).
func count(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 10000 {
		return 0, fmt.Errorf("%q is not a count", s)
	}
	return n, nil
}

func misconfigured(what string, err error) error {
	e := pvekeep.InvalidState("the product is misconfigured: " + what)
	e.Err = err
	return e
}
