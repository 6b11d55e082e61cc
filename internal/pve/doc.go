// Package pve is the gateway to the Proxmox VE API: the only package that
// imports github.com/luthermonson/go-proxmox, and the only one that turns
// PVE's answers into the sentinels the rest of the plugin reasons with.
// Cluster is the provider-side interface; *Client implements it.
//
// # HTTP path
//
// go-proxmox stays the HTTP client and does the authentication (API token
// header, or ticket + CSRF token after a password login, renewed by it on a
// 401). Every call goes through its exported Client.Req, with two things of
// ours underneath:
//
//   - our own *http.Client, so go-proxmox installs no retry RoundTripper
//     (only its WithRetry option does, and that one replays POSTs whose body
//     is buffered — which in go-proxmox is every POST). net/http itself never
//     replays a POST, PUT or DELETE. The gateway retries only GETs (three
//     attempts on network errors and 5xx) and a just-born task's 400. A
//     POST/PUT/DELETE is sent once; go-proxmox's re-login on a 401 re-sends
//     a request PVE refused, which is safe. Nothing re-POSTs a vzdump.
//   - captureTransport, a RoundTripper that changes nothing on the wire but,
//     for an error status, reads the body (bounded) before go-proxmox's
//     handleResponse reduces a 500 to its bare status line. The parsed
//     *HTTPError travels back through a per-call value in the request
//     context; the call wrapper returns it instead of go-proxmox's error.
//
// # Errors
//
// Classification happens once, at the bottom (bpg's validateResponseCode):
// 401/403 → ErrUnauthorized; 404, or a 5xx saying "does not exist"/"no
// such" → ErrNotFound; "already exists" → ErrAlreadyExists; "VM is locked
// (x)" → *LockedError{VMID, Lock} (errors.Is ErrLocked); other 5xx and
// network failures → ErrTransient (a TLS refusal is not transient); a 400
// keeps PVE's per-parameter reasons in HTTPError.Errors. A task that ends
// with anything but OK or "WARNINGS: N" is a *TaskError with the end of its
// log. Error strings and logs never hold the token secret, password or
// ticket: PVE's messages are scrubbed of the configured secrets, the
// transport error text too, and go-proxmox's own logger is left at its
// error-only default (it would print request bodies at debug level).
//
// # TLS
//
// VerifyTLS checks the chain and host name against the system roots.
// Fingerprint pins the SHA-256 of the leaf certificate (as PVE shows it,
// "AB:CD:…", case and separators ignored) and works with the self-signed
// certificate every PVE node ships with; when both are set both must hold.
// When neither is set — the common case of a hosting provider whose panel
// has verify_tls off and no fingerprint entered — the gateway connects
// anyway, encrypted but unauthenticated, as every PVE client does with
// verification off, and logs a warning once per client naming the
// fingerprint it saw so the operator can pin it. Refusing would break the
// common case; silently accepting would hide the risk.
//
// # Tasks
//
// WaitTask polls the task status every PollInterval (default 1s) with a
// sleep that ends when ctx is cancelled, and checks the exit status itself
// (go-proxmox's Task.Wait returns nil on failure and sleeps without ctx):
// "OK" and "WARNINGS: N" are success. A just-born UPID may answer 400 for
// a moment; TaskStatus retries that a few times (about five seconds).
//
// # Wire quirks
//
// Parameters are sent as JSON strings (what PVE's form encoding delivers:
// booleans as "1"/"0", integers as decimal). Answers decode through flexInt
// and flexBool because PVE sends integers as strings and booleans as 0/1
// in places. Path segments (volids, UPIDs) are percent-escaped; pveproxy
// unescapes the path before routing. The storage listing is decoded with
// our own Volume struct because go-proxmox's StorageContent mis-tags
// "protected". Volume reads the listing rather than GET …/content/{volid},
// which answers a missing file with an unhelpful 500. A task log is paged
// (limit 500) because older PVE treats limit=0 as 50 lines.
package pve
