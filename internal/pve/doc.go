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
// (x)" → *LockedError{VMID, Lock} (errors.Is ErrLocked); PVE's permanent
// refusals, which it also answers with a 500, keep their own sentinel and
// are not transient: "shrinking disks is not supported" → ErrShrink,
// "checksum mismatch" → ErrDigestMismatch, "already running"/"vm is
// running" → ErrRunning; other 5xx and network failures → ErrTransient (a
// TLS refusal is not transient); a 400 keeps PVE's per-parameter reasons in
// HTTPError.Errors. A task that ends with anything but OK or "WARNINGS: N"
// is a *TaskError with the end of its log, which unwraps to the same
// sentinels read from its exit status (PVE 8 reports a shrink, a clone onto
// a taken id or a start of a running guest only there) and to a
// *LockedError when the status or log names a lock. Error strings and logs never hold the token secret, password or
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
// One of them is required: credentials are never sent over a connection
// whose peer is not authenticated, so verify_tls off with no fingerprint
// is a *ConfigError for server.fingerprint and nothing is sent. A refused
// certificate is a *CertError carrying the fingerprint the server
// presented (and the pin it missed), never transient. ProbeTLS reads a
// server's certificate with a bare handshake — no HTTP request, no
// credential — so a connection test can show the fingerprint to pin
// before anything is trusted.
//
// # Settings
//
// Config.validate refuses what cannot work before any request, each as a
// *ConfigError naming the panel's field: a host that is not a plain host
// name or IP address (a scheme, "user@", a path, a port, spaces: net/url
// would otherwise connect to the part after "@"), a token id not shaped
// user@realm!name, a secret or password with a control character (it
// would break the HTTP header), a malformed fingerprint.
//
// # Connection reuse
//
// Connect builds a fresh transport each time (a spawned plugin makes one
// call). Pool.Connect shares one http.Transport per server identity (host,
// port, TLS policy, a hash of the credentials), bounded and LRU, so the
// warm socket process keeps its TLS connections between calls.
//
// # Tasks
//
// WaitTask polls the task status every PollInterval (default 1s) with a
// sleep that ends when ctx is cancelled, and checks the exit status itself
// (go-proxmox's Task.Wait returns nil on failure and sleeps without ctx):
// "OK" and "WARNINGS: N" are success. A just-born UPID may answer 400 for
// a moment; TaskStatus retries that, first after 50 ms and backing off to
// cover about five seconds.
//
// # Guest lifecycle
//
// Every call that starts a task returns its UPID and is sent exactly once;
// the caller saves the UPID before WaitTask (DESIGN §5, habit 9). "" with a
// nil error means there was nothing to wait for: StartVM on a running
// guest, StopVM/ShutdownVM on a stopped one (status/current is read first,
// and PVE's "already running"/"not running" answers count the same, as in
// bpg's StartVMAsync), ResizeDisk and UpdateConfigAsync when PVE finished
// inside the call. RestoreVM refuses a running or locked guest before
// sending (PVE would take the config lock and fail only in the task).
// DeleteVM of a missing guest is ErrNotFound, which a caller treats as
// done; CloneVM onto a taken id is ErrAlreadyExists, to be confirmed as
// ours before it counts as done; Linked asks PVE for a linked clone and
// gets its refusal where it cannot link, never a silent full copy.
// NextID only looks (PVE reserves nothing): callers that create guests
// concurrently reserve the id themselves. CloudInit renders the
// cloud-init options as PVE reads them (sshkeys URL-encoded, ipconfig0
// "ip=CIDR,gw=IP" or "ip=dhcp", a crypt hash as cipassword).
// UpdateConfig is never retried: a new disk
// ("scsi1=local-lvm:4") would be allocated twice; send Digest with it.
//
// Drive and Net read and write the property strings of drives and NICs as
// qemu-server does (Drive.pm, Network.pm): unknown options and their order
// survive a round trip, so a rewrite changes only what it means to.
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
// (limit 500) because older PVE treats limit=0 as 50 lines. DELETE
// parameters go in the query string, as PVE clients send them.
package pve
