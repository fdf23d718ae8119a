package fief_test

import (
	"context"
	"errors"
	"testing"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
)

func TestRequestErrorText(t *testing.T) {
	tests := []struct {
		body, code, text string
	}{
		{`{"error":"invalid_grant"}`, "invalid_grant", "fief: token request failed with status 400 (invalid_grant)"},
		{`{"detail":"ACR_TOO_LOW"}`, "ACR_TOO_LOW", "fief: token request failed with status 400 (ACR_TOO_LOW)"},
		{`{"detail":[{"type":"string_too_short","input":"hunter2"}]}`, "", "fief: token request failed with status 400"},
		{`{"detail":"<script>alert(1)</script>"}`, "", "fief: token request failed with status 400"},
		{`not json`, "", "fief: token request failed with status 400"},
	}
	s := newServer(t)
	c := newClient(t, s)
	for _, tt := range tests {
		s.SetFault(fieftest.EndpointToken, fieftest.Fault{Status: 400, Body: tt.body, Times: 1})
		_, _, err := c.AuthRefreshToken(context.Background(), "r")
		var re *fief.RequestError
		if !errors.As(err, &re) || re.Code != tt.code || err.Error() != tt.text || re.Body != tt.body {
			t.Errorf("body %s: %#v, Error %q", tt.body, re, err)
		}
	}
}
