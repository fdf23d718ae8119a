package fieftest_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fief-go/fief/fieftest"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwe"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// A Server is ready as soon as New returns. Give its URL to a Fief client as
// the base URL. Its issuer differs from that URL, as a real Fief's does.
func ExampleNew() {
	s := fieftest.New()
	defer s.Close()

	resp, err := http.Get(s.URL + "/.well-known/openid-configuration")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		log.Fatal(err)
	}
	fmt.Println("issuer:", doc.Issuer)
	fmt.Println("token endpoint:", strings.TrimPrefix(doc.TokenEndpoint, s.URL))
	// Output:
	// issuer: https://fief.test
	// token endpoint: /api/token
}

// In a test, NewTB closes the Server when the test ends.
func ExampleNewTB() {
	testUserinfo := func(t *testing.T) {
		s := fieftest.NewTB(t)
		alice := s.AddUser(fieftest.User{Email: "alice@example.com"})
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/api/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+s.AccessToken(alice.ID))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status %d", resp.StatusCode)
		}
	}
	_ = testUserinfo // run by the testing package
}

// AccessToken mints the tokens a handler under test receives, with the
// scopes, ACR and permissions the test needs. They verify against the
// Server's published keys, like tokens from a real Fief.
func ExampleServer_AccessToken() {
	s := fieftest.New()
	defer s.Close()
	alice := s.AddUser(fieftest.User{Email: "alice@example.com", Permissions: []string{"castles:read"}})

	token := s.AccessToken(alice.ID, fieftest.Scopes("openid", "castles"), fieftest.ACR("1"))

	keys, err := jwk.Fetch(context.Background(), s.URL+"/.well-known/jwks.json")
	if err != nil {
		log.Fatal(err)
	}
	key, _ := keys.LookupKeyID(s.KeyID())
	payload, err := jws.Verify([]byte(token), jws.WithKey(jwa.RS256, key))
	if err != nil {
		log.Fatal(err)
	}
	var claims struct {
		Issuer      string   `json:"iss"`
		Scope       string   `json:"scope"`
		ACR         string   `json:"acr"`
		Permissions []string `json:"permissions"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		log.Fatal(err)
	}
	fmt.Println(claims.Issuer, "|", claims.Scope, "|", claims.ACR, "|", claims.Permissions)
	// Output:
	// https://fief.test | openid castles | 1 | [castles:read]
}

// Authorize plays the browser in an authorization code flow: it logs in
// through the HTML form and returns the redirect with the code, which the
// client then exchanges at the token endpoint (here with PKCE S256).
func ExampleServer_Authorize() {
	s := fieftest.New()
	defer s.Close()
	s.AddUser(fieftest.User{Email: "alice@example.com", Password: "correct horse"})

	const verifier = "a-long-random-code-verifier-made-of-at-least-43-characters"
	sum := sha256.Sum256([]byte(verifier))
	authURL := s.URL + "/authorize?" + url.Values{
		"response_type":         {"code"},
		"client_id":             {s.ClientID},
		"redirect_uri":          {"http://localhost:8080/callback"},
		"scope":                 {"openid offline_access"},
		"state":                 {"xyz"},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}.Encode()

	callback, err := s.Authorize(authURL, "alice@example.com", "correct horse")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("state:", callback.Query().Get("state"))

	resp, err := http.PostForm(s.URL+"/api/token", url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {callback.Query().Get("code")},
		"redirect_uri":  {"http://localhost:8080/callback"},
		"code_verifier": {verifier},
		"client_id":     {s.ClientID},
		"client_secret": {s.ClientSecret},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var tokens struct {
		TokenType    string `json:"token_type"`
		ExpiresIn    int    `json:"expires_in"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tokens); err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.StatusCode, tokens.TokenType, tokens.ExpiresIn, tokens.RefreshToken != "")
	// Output:
	// state: xyz
	// 200 bearer 86400 true
}

// IssueCode skips the browser: the code is ready for the token endpoint.
func ExampleServer_IssueCode() {
	s := fieftest.New()
	defer s.Close()
	alice := s.AddUser(fieftest.User{Email: "alice@example.com"})

	code := s.IssueCode(fieftest.CodeRequest{
		UserID:      alice.ID,
		RedirectURI: "http://localhost:8080/callback",
		Nonce:       "n-0S6_WzA2Mj",
	})

	req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/token", strings.NewReader(url.Values{
		"grant_type":   {"authorization_code"},
		"code":         {code},
		"redirect_uri": {"http://localhost:8080/callback"},
	}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(s.ClientID, s.ClientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	fmt.Println(resp.Status, resp.Header.Get("Cache-Control"))
	// Output:
	// 200 OK no-store
}

// A client with EncryptIDToken receives encrypted ID tokens; EncryptionKey
// is the private JWK its Fief client is configured with.
func ExampleServer_EncryptionKey() {
	s := fieftest.New()
	defer s.Close()
	s.AddClient(fieftest.Client{ID: "mobile", Secret: "mobile-secret", EncryptIDToken: true})
	alice := s.AddUser(fieftest.User{Email: "alice@example.com"})

	idToken := s.IDToken(alice.ID, fieftest.ForClient("mobile"))

	key, err := jwk.ParseKey([]byte(s.EncryptionKey("mobile")))
	if err != nil {
		log.Fatal(err)
	}
	signed, err := jwe.Decrypt([]byte(idToken), jwe.WithKey(jwa.RSA_OAEP_256, key))
	if err != nil {
		log.Fatal(err)
	}
	payload, err := jws.Verify(signed, jws.WithKey(jwa.RS256, s.PublicKey()))
	if err != nil {
		log.Fatal(err)
	}
	var claims struct {
		Email    string   `json:"email"`
		Audience []string `json:"aud"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		log.Fatal(err)
	}
	fmt.Println(claims.Email, claims.Audience)
	// Output:
	// alice@example.com [mobile]
}

// Faults make an endpoint fail for a number of requests, to test retries
// and error handling; counters show what a client did.
func ExampleServer_SetFault() {
	s := fieftest.New()
	defer s.Close()
	s.SetFault(fieftest.EndpointJWKS, fieftest.Fault{Status: http.StatusServiceUnavailable, Times: 1})

	for range 2 {
		resp, err := http.Get(s.URL + "/.well-known/jwks.json")
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	fmt.Println("JWKS requests:", s.Requests(fieftest.EndpointJWKS))
	// Output:
	// 503
	// 200
	// JWKS requests: 2
}

// RotateKey publishes a new signing key next to the old one, so tokens
// signed before the rotation stay valid until RemoveKey.
func ExampleServer_RotateKey() {
	s := fieftest.New()
	defer s.Close()
	old := s.KeyID()
	current := s.RotateKey()

	keys, err := jwk.Fetch(context.Background(), s.URL+"/.well-known/jwks.json")
	if err != nil {
		log.Fatal(err)
	}
	_, hasOld := keys.LookupKeyID(old)
	_, hasNew := keys.LookupKeyID(current)
	fmt.Println(keys.Len(), hasOld, hasNew)

	s.RemoveKey(old)
	keys, _ = jwk.Fetch(context.Background(), s.URL+"/.well-known/jwks.json")
	fmt.Println(keys.Len())
	// Output:
	// 2 true true
	// 1
}

// A non-default tenant lives under a path; its issuer ends with it too.
func ExampleWithTenantPath() {
	s := fieftest.New(fieftest.WithTenantPath("/secondary"))
	defer s.Close()
	u, _ := url.Parse(s.URL)
	fmt.Println(u.Path)
	fmt.Println(s.Issuer())
	// Output:
	// /secondary
	// https://fief.test/secondary
}
