package fief_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fief-go/fief"
)

type extractCase struct {
	name    string
	prepare func(r *http.Request)
	want    string
	wantErr error
}

func runExtractCases(t *testing.T, e fief.Extractor, cases []extractCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/castles", nil)
			tc.prepare(r)
			before := r.Clone(r.Context())
			got, err := e.Extract(r)
			if got != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("Extract = %.40q, %v; want %.40q, %v", got, err, tc.want, tc.wantErr)
			}
			if err != nil && !errors.Is(err, fief.ErrAccessTokenInvalid) {
				t.Fatalf("%v does not wrap ErrAccessTokenInvalid", err)
			}
			if err != nil && got != "" {
				t.Fatal("a token returned with an error")
			}
			if r.URL.String() != before.URL.String() || len(r.Header) != len(before.Header) {
				t.Fatal("Extract modified the request")
			}
		})
	}
}

func authHeader(values ...string) func(r *http.Request) {
	return func(r *http.Request) {
		for _, v := range values {
			r.Header.Add("Authorization", v)
		}
	}
}

var (
	maxLenToken  = strings.Repeat("a", fief.MaxTokenLength)
	overLenToken = maxLenToken + "a"
)

func TestBearerToken(t *testing.T) {
	runExtractCases(t, fief.BearerToken(), []extractCase{
		{"no header", authHeader(), "", nil},
		{"empty header", authHeader(""), "", nil},
		{"bearer", authHeader("Bearer abc.def.ghi"), "abc.def.ghi", nil},
		{"lower case", authHeader("bearer abc"), "abc", nil},
		{"upper case", authHeader("BEARER abc"), "abc", nil},
		{"mixed case", authHeader("bEaReR abc"), "abc", nil},
		{"two spaces", authHeader("Bearer  abc"), "abc", nil},
		{"tab", authHeader("Bearer\tabc"), "abc", nil},
		{"surrounding white space", authHeader(" Bearer abc \t"), "abc", nil},
		{"scheme only", authHeader("Bearer"), "", nil},
		{"scheme and space", authHeader("Bearer "), "", nil},
		{"three parts", authHeader("Bearer abc def"), "", nil},
		{"token only", authHeader("abc.def.ghi"), "", nil},
		{"basic", authHeader("Basic YW5uZTpoZXJtaW5l"), "", nil},
		{"bearer prefix of another scheme", authHeader("Bearerx abc"), "", nil},
		{"other scheme, huge", authHeader("Basic " + overLenToken), "", nil},
		{"two headers", authHeader("Bearer abc", "Bearer abc"), "", fief.ErrMalformedAuthorization},
		{"two headers, one empty", authHeader("Bearer abc", ""), "", fief.ErrMalformedAuthorization},
		{"longest token", authHeader("Bearer " + maxLenToken), maxLenToken, nil},
		{"too long", authHeader("Bearer " + overLenToken), "", fief.ErrTokenTooLarge},
	})
}

func withCookies(cs ...*http.Cookie) func(r *http.Request) {
	return func(r *http.Request) {
		for _, c := range cs {
			r.AddCookie(c)
		}
	}
}

func TestCookieToken(t *testing.T) {
	runExtractCases(t, fief.CookieToken("fief_token"), []extractCase{
		{"no cookie", withCookies(), "", nil},
		{"other cookie", withCookies(&http.Cookie{Name: "session", Value: "abc"}), "", nil},
		{"cookie", withCookies(&http.Cookie{Name: "session", Value: "x"}, &http.Cookie{Name: "fief_token", Value: "abc.def.ghi"}), "abc.def.ghi", nil},
		{"empty", withCookies(&http.Cookie{Name: "fief_token", Value: ""}), "", nil},
		{"twice: the first counts", withCookies(&http.Cookie{Name: "fief_token", Value: "first"}, &http.Cookie{Name: "fief_token", Value: "second"}), "first", nil},
		{"name is case-sensitive", withCookies(&http.Cookie{Name: "FIEF_TOKEN", Value: "abc"}), "", nil},
		{"bearer header ignored", authHeader("Bearer abc"), "", nil},
		{"longest token", withCookies(&http.Cookie{Name: "fief_token", Value: maxLenToken}), maxLenToken, nil},
		{"too long", withCookies(&http.Cookie{Name: "fief_token", Value: overLenToken}), "", fief.ErrTokenTooLarge},
	})
}

func withQuery(q string) func(r *http.Request) {
	return func(r *http.Request) { r.URL.RawQuery = q }
}

func TestQueryToken(t *testing.T) {
	runExtractCases(t, fief.QueryToken("access_token"), []extractCase{
		{"no query", withQuery(""), "", nil},
		{"other parameter", withQuery("page=2"), "", nil},
		{"parameter", withQuery("page=2&access_token=abc.def.ghi"), "abc.def.ghi", nil},
		{"escaped", withQuery("access_token=a%2Bb"), "a+b", nil},
		{"empty", withQuery("access_token="), "", nil},
		{"twice", withQuery("access_token=a&access_token=b"), "", fief.ErrMalformedAuthorization},
		{"longest token", withQuery("access_token=" + maxLenToken), maxLenToken, nil},
		{"too long", withQuery("access_token=" + overLenToken), "", fief.ErrTokenTooLarge},
	})
}

func TestFirstToken(t *testing.T) {
	e := fief.FirstToken(fief.BearerToken(), fief.CookieToken("fief_token"), fief.QueryToken("access_token"))
	both := func(fns ...func(*http.Request)) func(*http.Request) {
		return func(r *http.Request) {
			for _, f := range fns {
				f(r)
			}
		}
	}
	cookie := withCookies(&http.Cookie{Name: "fief_token", Value: "from-cookie"})
	runExtractCases(t, e, []extractCase{
		{"none", both(), "", nil},
		{"header first", both(authHeader("Bearer from-header"), cookie), "from-header", nil},
		{"then cookie", both(authHeader("Basic x"), cookie, withQuery("access_token=from-query")), "from-cookie", nil},
		{"then query", withQuery("access_token=from-query"), "from-query", nil},
		{"an error stops", both(authHeader("Bearer a", "Bearer b"), cookie), "", fief.ErrMalformedAuthorization},
		{"an error after a miss", both(withCookies(&http.Cookie{Name: "fief_token", Value: overLenToken}), withQuery("access_token=q")), "", fief.ErrTokenTooLarge},
	})
	runExtractCases(t, fief.FirstToken(), []extractCase{{"no extractors", authHeader("Bearer abc"), "", nil}})
}

func TestExtractorFunc(t *testing.T) {
	errBad := errors.New("bad")
	var e fief.Extractor = fief.ExtractorFunc(func(r *http.Request) (string, error) {
		if r.Header.Get("X-Bad") != "" {
			return "", errBad
		}
		return r.Header.Get("X-Token"), nil
	})
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-Token", "abc")
	if got, err := e.Extract(r); got != "abc" || err != nil {
		t.Fatalf("Extract = %q, %v", got, err)
	}
	r.Header.Set("X-Bad", "1")
	if _, err := e.Extract(r); err != errBad {
		t.Fatalf("Extract error = %v", err)
	}
}

func TestExtractorErrors(t *testing.T) {
	for _, err := range []error{fief.ErrTokenTooLarge, fief.ErrMalformedAuthorization} {
		if !errors.Is(err, fief.ErrAccessTokenInvalid) {
			t.Errorf("%v does not wrap ErrAccessTokenInvalid", err)
		}
	}
	if errors.Is(fief.ErrNoToken, fief.ErrAccessTokenInvalid) {
		t.Error("ErrNoToken wraps ErrAccessTokenInvalid")
	}
}
