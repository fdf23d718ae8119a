package fief_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"sync"
	"testing"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
)

// benchKey is one RSA-4096 key, the size Fief generates, shared by every
// benchmark of the package (generating it takes seconds).
var benchKey = sync.OnceValue(func() *rsa.PrivateKey { return fieftest.GenerateKey(4096) })

// benchFixture returns a server signing with the 4096-bit key, a warmed-up
// client and a Fief-shaped access token.
func benchFixture(b *testing.B) (*fieftest.Server, *fief.Client, string) {
	b.Helper()
	s := fieftest.NewTB(b, fieftest.WithSigningKey(benchKey()))
	u := s.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Password: "herminetruc", Permissions: []string{"castles:read", "castles:write"}})
	c, err := fief.New(s.URL, s.ClientID, s.ClientSecret)
	if err != nil {
		b.Fatal(err)
	}
	tok := s.AccessToken(u.ID, fieftest.Scopes("openid", "offline_access", "castles"), fieftest.ACR("1"))
	if _, err := c.ValidateAccessToken(context.Background(), tok); err != nil {
		b.Fatal(err)
	}
	return s, c, tok
}

// BenchmarkValidateAccessToken compares ValidateAccessToken with the bare
// RSA signature check of the same token (the floor), in one run.
func BenchmarkValidateAccessToken(b *testing.B) {
	s, c, tok := benchFixture(b)
	ctx := context.Background()

	b.Run("bare-rsa-verify", func(b *testing.B) {
		pub := s.PublicKey()
		dot := strings.LastIndexByte(tok, '.')
		sig, err := base64.RawURLEncoding.DecodeString(tok[dot+1:])
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			h := sha256.Sum256([]byte(tok[:dot]))
			if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig); err != nil {
				b.Fatal(err)
			}
		}
	})
	uncached, err := fief.New(s.URL, s.ClientID, s.ClientSecret, fief.WithVerifiedTokenCache(0))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := uncached.ValidateAccessToken(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.Run("fief-first-sight", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := uncached.ValidateAccessToken(ctx, tok, fief.RequireScopes("castles")); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fief-repeat", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.ValidateAccessToken(ctx, tok, fief.RequireScopes("castles")); err != nil {
				b.Fatal(err)
			}
		}
	})
	if n := s.Requests(fieftest.EndpointJWKS); n != 2 { // one per client
		b.Fatalf("JWKS fetched %d times during the benchmark", n)
	}
}
