package fiefconnect_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fiefconnect"
	"github.com/fief-go/fief/fieftest"
)

// The procedures of a castle service, as its generated code names them.
const (
	getCastle  = "/castles.v1.CastleService/GetCastle"
	status     = "/castles.v1.CastleService/Status"
	burnCastle = "/castles.v1.CastleService/BurnCastle"
)

// castleHandler answers with what the authenticated context holds.
func castleHandler(ctx context.Context, req *connect.Request[wrapperspb.StringValue]) (*connect.Response[wrapperspb.StringValue], error) {
	answer := "open to all"
	if user, ok := fief.UserInfoFromContext(ctx); ok {
		answer = req.Msg.GetValue() + " for " + user.Email()
	} else if _, ok := fief.AccessTokenInfoFromContext(ctx); ok {
		answer = req.Msg.GetValue() + " for a user"
	}
	return connect.NewResponse(wrapperspb.String(answer)), nil
}

// A Connect service whose procedures each have their own requirements:
// the handler reads the identity from its context, and refusals are
// Connect codes with fixed messages.
func ExampleNewInterceptor() {
	srv := fieftest.New()
	defer srv.Close()
	anne := srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Permissions: []string{"castles:read"}})
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	auth, err := fief.NewAuthenticator(client)
	if err != nil {
		log.Fatal(err)
	}

	interceptor, err := fiefconnect.NewInterceptor(auth,
		fiefconnect.WithProcedure(getCastle, fief.RequirePermissions("castles:read"), fief.LoadUserInfo()),
		fiefconnect.WithPublic(status),
		// burnCastle is in no option: refused to everyone.
	)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, p := range []string{getCastle, status, burnCastle} {
		mux.Handle(p, connect.NewUnaryHandler(p, castleHandler, connect.WithInterceptors(interceptor)))
	}
	api := httptest.NewServer(mux)
	defer api.Close()

	call := func(procedure, token string) {
		req := connect.NewRequest(wrapperspb.String("Nantes"))
		if token != "" {
			req.Header().Set("Authorization", "Bearer "+token)
		}
		c := connect.NewClient[wrapperspb.StringValue, wrapperspb.StringValue](api.Client(), api.URL+procedure)
		res, err := c.CallUnary(context.Background(), req)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(res.Msg.GetValue())
	}
	call(getCastle, srv.AccessToken(anne.ID))
	call(getCastle, "")
	call(getCastle, srv.AccessToken(anne.ID, fieftest.Permissions()))
	call(status, "")
	call(burnCastle, srv.AccessToken(anne.ID))
	// Output:
	// Nantes for anne@bretagne.duchy
	// unauthenticated: missing, invalid or expired access token
	// permission_denied: the access token lacks a required scope, ACR or permission
	// open to all
	// permission_denied: procedure not allowed
}

// A client that calls a Connect API with a Fief session's access token,
// refreshed through Fief when it expires; the API authenticates with a
// request gate, before the request message is decoded.
func ExampleNewClientInterceptor() {
	srv := fieftest.New()
	defer srv.Close()
	anne := srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy"})
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	auth, _ := fief.NewAuthenticator(client)
	gate, err := fiefconnect.NewInterceptor(auth, fiefconnect.WithDefault())
	if err != nil {
		log.Fatal(err)
	}
	api := httptest.NewServer(connect.NewUnaryHandler(getCastle, castleHandler, connect.WithRequestGate(gate.Gate)))
	defer api.Close()

	// The client's side: a Fief session, as after a login.
	ctx := context.Background()
	code := srv.IssueCode(fieftest.CodeRequest{UserID: anne.ID, RedirectURI: "http://localhost/cb", Scopes: []string{"openid", "offline_access"}})
	tokens, _, _ := client.AuthCallback(ctx, code, "http://localhost/cb", "")
	ts := client.TokenSource(tokens, func(t *fief.Tokens) { /* save t: the old refresh token is spent */ })

	// The test server has no TLS: the token would go in clear text.
	_, err = fiefconnect.NewClientInterceptor(api.URL, ts)
	fmt.Println("refused over plain http:", err != nil)
	// It is on the loopback interface, where plain http may be allowed.
	ci, err := fiefconnect.NewClientInterceptor(api.URL, ts, fiefconnect.AllowPlaintextHTTP())
	if err != nil {
		log.Fatal(err)
	}
	castles := connect.NewClient[wrapperspb.StringValue, wrapperspb.StringValue](http.DefaultClient, api.URL+getCastle,
		connect.WithInterceptors(ci))
	res, err := castles.CallUnary(ctx, connect.NewRequest(wrapperspb.String("Vannes")))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Msg.GetValue())
	// Output:
	// refused over plain http: true
	// Vannes for a user
}
