package fief

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fief-go/fief/fieftest"
)

// TestDecodeIDToken covers the ID-token checks that a well-behaved server
// never triggers: hash mismatches, expiry, issuer, audience, foreign keys.
func TestDecodeIDToken(t *testing.T) {
	s := fieftest.NewTB(t)
	s.AddClient(fieftest.Client{ID: "enc", Secret: "s", EncryptIDToken: true})
	u := s.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Password: "herminetruc"})
	c, err := New(s.URL, s.ClientID, s.ClientSecret)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := New(s.URL, "enc", "s", WithEncryptionKey(s.EncryptionKey("enc")))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const code, at = "the-code", "the-access-token"
	tests := []struct {
		name    string
		client  *Client
		token   string
		code    string
		at      string
		wantErr bool
	}{
		{"valid, no hashes", c, s.IDToken(u.ID), "", "", false},
		{"valid hashes", c, s.IDToken(u.ID, fieftest.CHash(code), fieftest.ATHash(at)), code, at, false},
		{"c_hash mismatch", c, s.IDToken(u.ID, fieftest.CHash("other")), code, at, true},
		{"at_hash mismatch", c, s.IDToken(u.ID, fieftest.ATHash("other")), code, at, true},
		{"c_hash without code (refresh)", c, s.IDToken(u.ID, fieftest.CHash(code)), "", at, true},
		{"at_hash without access token", c, s.IDToken(u.ID, fieftest.ATHash(at)), code, "", true},
		{"no kid", c, s.IDToken(u.ID, fieftest.Header("kid", nil)), "", "", false},
		{"expired", c, s.IDToken(u.ID, fieftest.ExpiresIn(-time.Hour)), "", "", true},
		{"no exp", c, s.IDToken(u.ID, fieftest.Claim("exp", nil)), "", "", true},
		{"wrong issuer", c, s.IDToken(u.ID, fieftest.Claim("iss", "https://evil")), "", "", true},
		{"other audience", c, s.IDToken(u.ID, fieftest.Audience("other")), "", "", true},
		{"other key", c, s.IDToken(u.ID, fieftest.SignWith(fieftest.GenerateKey(2048))), "", "", true},
		{"malformed", c, "a.b", "", "", true},
		{"encrypted, no key", c, s.IDToken(u.ID, fieftest.Encrypt("enc")), "", "", true},
		{"encrypted, key", enc, s.IDToken(u.ID, fieftest.ForClient("enc")), "", "", false},
		{"plain, key", enc, s.IDToken(u.ID, fieftest.Audience("enc")), "", "", true},
		{"encrypted for another client", enc, s.IDToken(u.ID, fieftest.Encrypt("enc"), fieftest.Audience(s.ClientID)), "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := tt.client.decodeIDToken(ctx, tt.token, tt.code, tt.at)
			if tt.wantErr {
				if !errors.Is(err, ErrIDTokenInvalid) {
					t.Fatalf("err = %v, want ErrIDTokenInvalid", err)
				}
				if strings.Contains(err.Error(), tt.token) {
					t.Fatal("error repeats the token")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if info.Sub() != u.ID || info.Email() != u.Email {
				t.Fatalf("claims = %v", info)
			}
		})
	}
}
