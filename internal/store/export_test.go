package store

// Classify exposes the error classification to the external tests.
var Classify = classify

// Interpolates exposes whether a DSN gets interpolateParams.
func Interpolates(dsn string) bool {
	cfg, err := parseDSN(dsn)
	return err == nil && cfg.InterpolateParams
}
