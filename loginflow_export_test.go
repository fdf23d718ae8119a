package fief

import "time"

// SetLoginFlowClock replaces the clock f checks flow expiry with, for tests.
func SetLoginFlowClock(f *LoginFlow, now func() time.Time) { f.now = now }
