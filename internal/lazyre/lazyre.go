// Package lazyre is a regular expression compiled on first use instead of
// at package initialisation.
//
// The panel spawns `pvekeep serve` once per page view, and every package
// linked into the binary runs its initialisers before main, whether the
// request needs them or not: the Proxmox gateway's and the simulator's
// patterns alone cost that process about half a millisecond. A pattern
// declared with New costs nothing until something matches against it.
package lazyre

import (
	"regexp"
	"sync"
)

// Regexp is a *regexp.Regexp compiled on first use. Its methods are those
// of regexp.Regexp the code base calls; add more as needed. An invalid
// pattern panics on first use, as regexp.MustCompile does at start-up
// (each package's tests use its patterns).
type Regexp struct {
	expr string
	once sync.Once
	re   *regexp.Regexp
}

// New declares a pattern; nothing is compiled yet.
func New(expr string) *Regexp { return &Regexp{expr: expr} }

// Regexp returns the compiled expression.
func (r *Regexp) Regexp() *regexp.Regexp {
	r.once.Do(func() { r.re = regexp.MustCompile(r.expr) })
	return r.re
}

// String returns the source text.
func (r *Regexp) String() string { return r.expr }

func (r *Regexp) MatchString(s string) bool { return r.Regexp().MatchString(s) }

func (r *Regexp) FindString(s string) string { return r.Regexp().FindString(s) }

func (r *Regexp) FindStringSubmatch(s string) []string { return r.Regexp().FindStringSubmatch(s) }

func (r *Regexp) FindAllString(s string, n int) []string { return r.Regexp().FindAllString(s, n) }

func (r *Regexp) FindAllStringSubmatch(s string, n int) [][]string {
	return r.Regexp().FindAllStringSubmatch(s, n)
}

func (r *Regexp) FindAllStringSubmatchIndex(s string, n int) [][]int {
	return r.Regexp().FindAllStringSubmatchIndex(s, n)
}

func (r *Regexp) ReplaceAllString(src, repl string) string {
	return r.Regexp().ReplaceAllString(src, repl)
}

func (r *Regexp) ReplaceAllStringFunc(src string, repl func(string) string) string {
	return r.Regexp().ReplaceAllStringFunc(src, repl)
}
