package pve

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"sync"
)

// Pool hands out Clients that share one HTTP transport per server
// identity, so a long-lived process (serve --listen unix:…, worker) keeps
// its TLS connections to Proxmox open between calls instead of shaking
// hands again for every request. The identity is everything the transport
// or the authentication depends on: host, port, TLS policy (verify, pin)
// and a hash of the credentials, so two panels' servers never share a
// connection. It is safe for concurrent use and holds at most Max
// identities; the least recently used one's idle connections are closed
// when it is dropped.
//
// Only transports are shared: each Connect returns a fresh Client (cheap)
// so nothing of go-proxmox's per-client session state is shared between
// concurrent calls.
type Pool struct {
	max int

	mu      sync.Mutex
	entries map[string]*list.Element // key → element holding *poolEntry
	lru     *list.List               // front: most recently used
}

type poolEntry struct {
	key string
	tr  *http.Transport
}

// NewPool returns a Pool holding up to max identities (default 32).
func NewPool(max int) *Pool {
	if max <= 0 {
		max = 32
	}
	return &Pool{max: max, entries: map[string]*list.Element{}, lru: list.New()}
}

// Connect is Connect with the identity's shared transport.
func (p *Pool) Connect(ctx context.Context, cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return connect(ctx, cfg, p.transport(cfg))
}

// Len is the number of identities held.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lru.Len()
}

// Close closes every idle connection and forgets all identities.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for e := p.lru.Front(); e != nil; e = e.Next() {
		e.Value.(*poolEntry).tr.CloseIdleConnections()
	}
	p.entries = map[string]*list.Element{}
	p.lru.Init()
}

func (p *Pool) transport(cfg Config) *http.Transport {
	key := identity(cfg)
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.entries[key]; ok {
		p.lru.MoveToFront(e)
		return e.Value.(*poolEntry).tr
	}
	tr := newTransport(cfg)
	p.entries[key] = p.lru.PushFront(&poolEntry{key: key, tr: tr})
	for p.lru.Len() > p.max {
		last := p.lru.Back()
		old := p.lru.Remove(last).(*poolEntry)
		delete(p.entries, old.key)
		// Connections in use finish their request and are then closed
		// by the idle timeout; idle ones go now.
		old.tr.CloseIdleConnections()
	}
	return tr
}

// identity hashes what makes a transport (and its connections) belong to
// one server as one panel configured it. Secrets enter only the hash.
func identity(cfg Config) string {
	h := sha256.New()
	pin := ""
	if b, err := parseFingerprint(cfg.Fingerprint); err == nil {
		pin = hex.EncodeToString(b)
	}
	for _, part := range []string{
		dialHost(cfg.Host), strconv.Itoa(cfg.Port), strconv.FormatBool(cfg.VerifyTLS), pin,
		cfg.TokenID, cfg.TokenSecret, cfg.Username, cfg.Password,
		cfg.Timeout.String(), strconv.FormatBool(cfg.RootCAs != nil),
	} {
		h.Write([]byte(strconv.Itoa(len(part))))
		h.Write([]byte{':'})
		h.Write([]byte(part))
	}
	if cfg.RootCAs != nil {
		// A custom pool (tests) is identified by its address.
		fmt.Fprintf(h, "%p", cfg.RootCAs)
	}
	return hex.EncodeToString(h.Sum(nil))
}
