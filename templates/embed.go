// Package templates holds the files WHMCS renders (Smarty *.tpl for the
// client area) and the email templates under email/, which the plugin
// renders itself. Files embeds email/ so the binary carries the same
// templates `make package` ships.
package templates

import "embed"

// Files holds email/*: Go html/template (*.html.tmpl) and text/template
// (*.txt.tmpl) files, one pair per email kind.
//
//go:embed email/*
var Files embed.FS
