package fief_test

import (
	"testing"

	"github.com/fief-go/fief"
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
	for _, tt := range tests {
		err := &fief.RequestError{Endpoint: "token", StatusCode: 400, Body: tt.body}
		if err.Code() != tt.code || err.Error() != tt.text {
			t.Errorf("body %s: Code %q, Error %q", tt.body, err.Code(), err.Error())
		}
	}
}
