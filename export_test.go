package fief

import "time"

// WithClock sets the clock a Client checks expiry and key-set age with, for
// tests.
func WithClock(now func() time.Time) Option {
	return func(s *settings) error { s.now = now; return nil }
}

// SetLoginFlowClock replaces the clock f checks flow expiry with, for tests.
func SetLoginFlowClock(f *LoginFlow, now func() time.Time) { f.now = now }

// RefreshTokenOf returns the refresh token that a refresh cookie value of f
// holds, or "" if the value does not open, so that tests can look for it
// where it must not be.
func RefreshTokenOf(f *LoginFlow, value string) string {
	if st := f.openRefreshValue(value); st != nil {
		return st.token
	}
	return ""
}

// SealRefreshCookie returns a refresh cookie value of f for a session of
// userID started at start, holding token.
func SealRefreshCookie(f *LoginFlow, start time.Time, userID, token string) string {
	return f.sealRefresh(refreshState{start: start, lifetime: 3600, userID: userID, token: token})
}
