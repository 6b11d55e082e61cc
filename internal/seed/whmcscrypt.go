package seed

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// StandinCCHash is the $cc_encryption_hash of the WHMCS stand-in
// (hooks/standin) unless WHMCS_STANDIN_CC_HASH says otherwise.
const StandinCCHash = "pvekeep-standin-cc-encryption-hash"

// Encrypt is the stand-in's encrypt(): AES-256-CBC (PKCS#7 padding) keyed by
// SHA-256 of hash, base64(iv || ciphertext). WHMCS's own cipher is not
// public; what matters is that WHMCS stores server passwords encrypted and
// hands modules the decrypted value, which the stand-in does with this.
func Encrypt(hash, plain string) (string, error) {
	key := sha256.Sum256([]byte(hash))
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return "", err
	}
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	data := append([]byte(plain), bytes.Repeat([]byte{byte(pad)}, pad)...)
	out := make([]byte, aes.BlockSize+len(data))
	if _, err := rand.Read(out[:aes.BlockSize]); err != nil {
		return "", err
	}
	cipher.NewCBCEncrypter(block, out[:aes.BlockSize]).CryptBlocks(out[aes.BlockSize:], data)
	return base64.StdEncoding.EncodeToString(out), nil
}

// Setting sets a tblconfiguration row (WHMCS's general settings: DateFormat,
// Language, SystemURL, Template, …).
func (s *Seeder) Setting(ctx context.Context, name, value string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO tblconfiguration (setting, value, created_at, updated_at) VALUES (?, ?, ?, ?)
ON DUPLICATE KEY UPDATE value = VALUES(value), updated_at = VALUES(updated_at)`, name, value, s.ts(), s.ts())
	if err != nil {
		return fmt.Errorf("set setting %s: %w", name, err)
	}
	return nil
}
