// Package lang holds the translations, one flat JSON object of key → string
// per language (en.json, de.json, …). PHP reads the same files from disk;
// Go reads them through Files, so both sides always show the same text.
//
// Keys are never renamed once shipped (the panel may still ask for them);
// new strings get new keys. Placeholders are written {name}.
package lang

import "embed"

// Files holds every *.json translation file at its base name.
//
//go:embed *.json
var Files embed.FS
