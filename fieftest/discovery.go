package fieftest

import "net/http"

// handleDiscovery serves GET /.well-known/openid-configuration with exactly
// the members Fief sends. Endpoint URLs follow the request's scheme and
// host (X-Forwarded-Host when present); the issuer does not.
func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	base := s.baseURL(r)
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                   s.issuer,
		"authorization_endpoint":                   base + "/authorize",
		"token_endpoint":                           base + "/api/token",
		"userinfo_endpoint":                        base + "/api/userinfo",
		"jwks_uri":                                 base + "/.well-known/jwks.json",
		"registration_endpoint":                    base + "/register",
		"scopes_supported":                         []string{"openid", "offline_access"},
		"response_types_supported":                 []string{"code", "code id_token", "code token", "code id_token token"},
		"response_modes_supported":                 []string{"query", "fragment"},
		"grant_types_supported":                    []string{"authorization_code", "refresh_token"},
		"subject_types_supported":                  []string{"public"},
		"id_token_signing_alg_values_supported":    []string{"RS256"},
		"id_token_encryption_alg_values_supported": []string{"RSA-OAEP-256"},
		"id_token_encryption_enc_values_supported": []string{"A256CBC-HS512"},
		"userinfo_signing_alg_values_supported":    []string{"none"},
		"acr_values_supported":                     []string{"0", "1"},
		"token_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post"},
		"claims_supported":                         []string{"email", "email_verified", "is_active", "tenant_id", "fields"},
		"request_parameter_supported":              false,
		"code_challenge_methods_supported":         []string{"plain", "S256"},
		"service_documentation":                    "https://docs.fief.dev",
	})
}
