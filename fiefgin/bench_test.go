package fiefgin_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fiefgin"
	"github.com/gin-gonic/gin"
)

// BenchmarkAuthenticated measures a request through the gin middleware and
// through the root's net/http middleware, both on the same core, with a
// token seen before (the verified-token cache): the difference is gin's
// and the adapter's cost.
func BenchmarkAuthenticated(b *testing.B) {
	e := newEnv(b)
	auth := e.auth(b)
	r := httptest.NewRequest(http.MethodGet, "/castles", nil)
	r.Header.Set("Authorization", bearer(e.token()))
	ok := func(w http.ResponseWriter) {
		if rec := w.(*httptest.ResponseRecorder); rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}

	b.Run("gin", func(b *testing.B) {
		engine := gin.New()
		engine.GET("/castles", fiefgin.Authenticated(auth, reqs...), func(c *gin.Context) { c.Status(http.StatusOK) })
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			engine.ServeHTTP(w, r)
			ok(w)
		}
	})
	b.Run("net/http", func(b *testing.B) {
		h := auth.Authenticated(reqs...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, found := fief.AccessTokenInfoFromContext(r.Context()); !found {
				b.Fatal("no info")
			}
			w.WriteHeader(http.StatusOK)
		}))
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			ok(w)
		}
	})
}
