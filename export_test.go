package fief

import "time"

// WithClock sets the clock a Client checks expiry and key-set age with, for
// tests.
func WithClock(now func() time.Time) Option {
	return func(s *settings) error { s.now = now; return nil }
}

// SetLoginFlowClock replaces the clock f checks flow expiry with, for tests.
func SetLoginFlowClock(f *LoginFlow, now func() time.Time) { f.now = now }
