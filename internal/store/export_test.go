package store

// Classify exposes the error classification to the external tests.
var Classify = classify
