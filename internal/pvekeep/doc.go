// Package pvekeep is the shared vocabulary of the plugin: identifiers, job
// states and kinds, the records that move between packages, and the typed
// application error that the API edge turns into JSON-RPC error codes.
//
// It imports no other internal package, so every other package may import it
// (the same role restic's internal/restic plays).
package pvekeep
