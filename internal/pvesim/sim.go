package pvesim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a simulator. The zero value is usable: one node, no
// VMs, realistic speed, generated credentials.
type Options struct {
	// Nodes is the number of cluster nodes, named pve1…pveN (default 1).
	Nodes int
	// VMs is the number of VMs, vmids 100…100+VMs-1 spread round-robin over
	// the nodes; each has 1 core, 1024 MiB, scsi0 10 GiB on local-lvm,
	// net0 virtio on vmbr0, and is running.
	VMs int
	// NoTemplates leaves out the templates seeded by default: one per
	// node, vmid TemplateVMID+i on pve(i+1) (9000 on pve1, 9001 on pve2, …),
	// named "debian-12-template", stopped, "template: 1", scsi0 a 4 GiB
	// base volume on local-lvm, for reinstalls to clone.
	NoTemplates bool
	// Speed divides every simulated duration: 1 is realistic (a 10 GiB
	// vzdump takes about 80 s), 20 is twenty times faster (default 1).
	Speed float64
	// TokenID and TokenSecret are the accepted API token
	// (default "root@pam!pvekeep" and a random UUID-like secret).
	TokenID, TokenSecret string
	// Password is root@pam's password for ticket login (default random).
	Password string
	// Logger receives the simulator's own logs (default: discard).
	Logger *slog.Logger
	// Clock gives the simulated wall time (UPID start times, backup file
	// names, ctime). Durations always run on the real monotonic clock,
	// divided by Speed. Default time.Now.
	Clock func() time.Time
	// TaskVisibleAfter is how long a new task's status answers 400 "no such
	// task", as a just-forked PVE worker does (default 50ms; negative: never).
	TaskVisibleAfter time.Duration
	// TokenPrivileges is the API token's ACL (see SetTokenPrivileges); nil:
	// the token may do everything, as root@pam's without privilege
	// separation.
	TokenPrivileges map[string][]string
	// NewestOnlyRollback names disk storages that roll a volume back only
	// to its newest snapshot, as ZFS does (see SetNewestOnlyRollback).
	NewestOnlyRollback []string
}

// TemplateVMID is the vmid of the template seeded on pve1; pveN has
// TemplateVMID+N-1.
const TemplateVMID = 9000

// templateDiskSize is the seeded templates' disk size.
const templateDiskSize = 4 << 30

// addVM registers a VM and the volumes its config references. Caller
// holds s.mu or owns s exclusively.
func (s *Sim) addVM(v *vm) {
	s.vms[v.vmid] = v
	for _, d := range v.disks() {
		storage, _, _ := strings.Cut(d.volid, ":")
		if _, ok := findStorage(storage); !ok {
			continue
		}
		k := imageKey(d.volid)
		_, name, _ := strings.Cut(k, ":")
		s.images[k] = &image{node: v.node, storage: storage, name: name, vmid: volumeOwner(d.volid), size: d.size}
	}
}

// Info tells a client how to reach a started simulator (DESIGN §8).
type Info struct {
	URL         string `json:"url"`
	TokenID     string `json:"token_id"`
	TokenSecret string `json:"token_secret"`
	Username    string `json:"username"`
	Password    string `json:"password"`
	Fingerprint string `json:"fingerprint"`
	ControlURL  string `json:"control_url"`
}

const (
	rootUser       = "root@pam"
	clusterName    = "pvesim"
	backupStorage  = "backup"
	imagesStorage  = "local-lvm"
	backupPath     = "/mnt/backup"
	pveVersion     = "9.1.1"
	pveRelease     = "9.1"
	pveRepoID      = "42ef2a6a5ee8d3b7"
	defaultVisible = 50 * time.Millisecond
)

// Sim is a Proxmox VE simulator: an HTTPS server speaking the PVE API for
// the endpoints pvekeep uses, with in-memory state. It is safe for
// concurrent use.
type Sim struct {
	opts   Options
	log    *slog.Logger
	schema *apiSchema
	routes []route

	ctx    context.Context
	cancel context.CancelFunc
	tasksW sync.WaitGroup

	mu         sync.Mutex
	nodes      []string
	vms        map[int]*vm
	volumes    map[string]*volume // backup volumes by volid
	images     map[string]*image  // VM disk volumes by volid (LV name)
	tasks      map[string]*task
	taskOrder  []*task
	tickets    map[string]ticket
	httpFaults []*httpFault
	taskFaults []*taskFault
	nextPID    int
	lastBackup map[int]time.Time
	nodeLocks  map[string]chan struct{}
	tokenACL   map[string][]string // nil: every privilege everywhere
	snapSeq    int64               // snapshots taken so far (their creation order)
	newestOnly map[string]bool     // storages that roll back only to the newest snapshot

	bootTime time.Time // simulated time the simulator was made

	srv    *http.Server
	serveW sync.WaitGroup
	info   Info
	cert   *x509.Certificate
	conns  atomic.Int64 // TCP (TLS) connections accepted
}

// New builds a simulator with its inventory; Start serves it.
func New(opts Options) *Sim {
	opts = opts.withDefaults()
	schema, err := loadSchema()
	if err != nil {
		// the schema is embedded at build time: failing here is a build defect
		panic(fmt.Sprintf("pvesim: %v", err))
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sim{
		opts:       opts,
		log:        opts.Logger,
		schema:     schema,
		ctx:        ctx,
		cancel:     cancel,
		vms:        map[int]*vm{},
		volumes:    map[string]*volume{},
		images:     map[string]*image{},
		tasks:      map[string]*task{},
		tickets:    map[string]ticket{},
		nextPID:    100000 + int(randUint32()%50000),
		lastBackup: map[int]time.Time{},
		nodeLocks:  map[string]chan struct{}{},
		newestOnly: map[string]bool{},
	}
	for i := 1; i <= opts.Nodes; i++ {
		name := fmt.Sprintf("pve%d", i)
		s.nodes = append(s.nodes, name)
		s.nodeLocks[name] = make(chan struct{}, 1)
	}
	now := s.now()
	s.bootTime = now
	for i := 0; i < opts.VMs; i++ {
		vmid := 100 + i
		s.addVM(newVM(vmid, s.nodes[i%len(s.nodes)], now, s.allocPID()))
	}
	if !opts.NoTemplates {
		for i, n := range s.nodes {
			s.addVM(newTemplate(TemplateVMID+i, n, now))
		}
	}
	if opts.TokenPrivileges != nil {
		s.SetTokenPrivileges(opts.TokenPrivileges)
	}
	for _, id := range opts.NewestOnlyRollback {
		if err := s.SetNewestOnlyRollback(id, true); err != nil {
			panic(fmt.Sprintf("pvesim: NewestOnlyRollback: %v", err))
		}
	}
	s.routes = s.buildRoutes()
	return s
}

func (o Options) withDefaults() Options {
	if o.Nodes <= 0 {
		o.Nodes = 1
	}
	if o.VMs < 0 {
		o.VMs = 0
	}
	if o.Speed <= 0 {
		o.Speed = 1
	}
	if o.TokenID == "" {
		o.TokenID = rootUser + "!pvekeep"
	}
	if o.TokenSecret == "" {
		o.TokenSecret = randomUUID()
	}
	if o.Password == "" {
		o.Password = randomHex(12)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.TaskVisibleAfter == 0 {
		o.TaskVisibleAfter = defaultVisible
	}
	return o
}

// now is the simulated wall time, in UTC (the nodes' time zone).
func (s *Sim) now() time.Time { return s.opts.Clock().UTC() }

// scaled turns a simulated duration into the real time it takes.
func (s *Sim) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) / s.opts.Speed)
}

// sleep waits a simulated duration; it fails when the simulator closes.
func (s *Sim) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(s.scaled(d))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

// allocPID hands out process ids; callers hold s.mu or own s exclusively.
func (s *Sim) allocPID() int {
	s.nextPID += 1 + int(randUint32()%7)
	return s.nextPID
}

// Start serves the simulator over HTTPS on listen (e.g. "127.0.0.1:0")
// with a self-signed certificate made now.
func (s *Sim) Start(listen string) (Info, error) {
	cert, fingerprint, err := selfSignedCert(s.nodes, s.now())
	if err != nil {
		return Info{}, fmt.Errorf("make certificate: %w", err)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return Info{}, fmt.Errorf("listen on %s: %w", listen, err)
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	base := "https://" + net.JoinHostPort(host, port)
	s.mu.Lock()
	s.info = Info{
		URL:         base + "/api2/json",
		TokenID:     s.opts.TokenID,
		TokenSecret: s.opts.TokenSecret,
		Username:    rootUser,
		Password:    s.opts.Password,
		Fingerprint: fingerprint,
		ControlURL:  base + "/_sim",
	}
	info := s.info
	s.srv = &http.Server{
		Handler: s,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
		},
		// PVE speaks HTTP/1.1 only; it also lets the server write PVE's
		// own status lines (see writeResponse).
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.conns.Add(1)
			}
		},
	}
	s.cert, _ = x509.ParseCertificate(cert.Certificate[0])
	srv := s.srv
	s.mu.Unlock()

	s.serveW.Add(1)
	go func() {
		defer s.serveW.Done()
		if err := srv.Serve(tls.NewListener(ln, srv.TLSConfig)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", "err", err)
		}
	}()
	s.log.Info("pvesim started", "url", info.URL, "nodes", len(s.nodes), "vms", s.opts.VMs, "speed", s.opts.Speed)
	return info, nil
}

// Connections is how many TCP connections (each with its TLS handshake)
// clients have opened so far: what a client that reuses its connections
// keeps low.
func (s *Sim) Connections() int64 { return s.conns.Load() }

// Certificate is the server's self-signed certificate (valid for
// localhost, 127.0.0.1, ::1 and the node names), for tests that trust it
// as a CA; nil before Start.
func (s *Sim) Certificate() *x509.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cert
}

// Close stops the server and every task goroutine and waits for them.
func (s *Sim) Close() error {
	s.cancel()
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	var err error
	if srv != nil {
		err = srv.Close()
	}
	s.serveW.Wait()
	s.tasksW.Wait()
	return err
}

// selfSignedCert makes a P-256 certificate for localhost and the node
// names and returns it with its SHA-256 fingerprint in PVE's "AB:CD:…" form.
func selfSignedCert(nodes []string, now time.Time) (tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("generate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "pvesim", Organization: []string{"PVE Cluster Node (simulated)"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(2 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     append([]string{"localhost"}, nodes...),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("create certificate: %w", err)
	}
	sum := sha256.Sum256(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, fingerprintString(sum[:]), nil
}

func fingerprintString(sum []byte) string {
	h := strings.ToUpper(hex.EncodeToString(sum))
	parts := make([]string, 0, len(sum))
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

func randUint32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randomUUID() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
