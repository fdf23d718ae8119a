// Package fiefotel turns the events a [fief.Client] reports through its
// [fief.Hooks] into OpenTelemetry metrics: token checks, fetches of Fief's
// OpenID configuration and key set, userinfo calls, user-info cache reads
// and logins. The root package imports no OpenTelemetry; this module is
// the one that does.
//
//	hooks, err := fiefotel.NewHooks(fiefotel.WithMeterProvider(mp))
//	if err != nil { ... }
//	client, err := fief.New(baseURL, clientID, clientSecret,
//		fief.WithHooks(hooks),
//		// Calls to Fief as client spans of the traces:
//		fief.WithHTTPClient(&http.Client{
//			Timeout:   fief.DefaultTimeout,
//			Transport: otelhttp.NewTransport(http.DefaultTransport),
//		}))
//
// The Authenticators and LoginFlows built on the client report through
// the same hooks.
//
// # Instruments
//
// The meter is named [ScopeName], with the module's version when the
// build knows it. Every duration is in seconds; a histogram's count is the
// number of events, so no counter repeats it.
//
//	Name                       Kind       Unit     Attributes                  Meaning
//	fief.token.check.duration  histogram  s        fief.outcome,               one access-token check: a request
//	                                               fief.token.cached           an Authenticator authenticated (user
//	                                                                           info included on CurrentUser
//	                                                                           routes), a ValidateAccessToken call
//	fief.fetch.duration        histogram  s        fief.resource,              one fetch of the OpenID
//	                                               fief.outcome                configuration or of the key set
//	fief.keyset.age            gauge      s        url.full                    time since the last successful
//	                           (async)                                         fetch of the key set at url.full
//	fief.userinfo.duration     histogram  s        fief.outcome                one call to Fief's userinfo endpoint
//	fief.userinfo.cache.reads  counter    {read}   fief.cache.result           reads of an Authenticator's
//	                                                                           user-info cache
//	fief.logins                counter    {login}  fief.outcome                logins a LoginFlow's callback ended
//
// The attributes and their values:
//
//	fief.outcome       on token checks: ok, no_token, invalid, expired,
//	                   insufficient (scope, ACR or permission), unavailable
//	                   (Fief could not be used, or the caller went away);
//	                   on fetches: ok, error;
//	                   on userinfo calls: ok, refused (a 4xx answer), error;
//	                   on logins: ok, denied, invalid, refused, unavailable,
//	                   error (see fief.LoginResult)
//	fief.token.cached  true when the verified-token cache knew the token, so
//	                   that its signature was not checked again
//	fief.resource      discovery or jwks
//	fief.cache.result  hit, miss or error
//	url.full           the key set's URL (one series per tenant)
//
// The histograms' bucket boundaries span the range of each: from 1µs
// (a verified-token cache hit) to 10s for token checks, from 0.5ms to 10s
// (the client's default timeout) for fetches and userinfo calls. An SDK
// view on [ScopeName] changes them.
//
// fief.keyset.age has a series from the first successful fetch of a key set
// on (none for a key set given with [fief.WithKeySet] until Fief serves
// it); a key set in use is refreshed once it is [fief.KeySetMaxAge] old, so
// an age well beyond that says the refresh fails, or that the key set was
// not used since.
//
// # Traces
//
// Hooks record metrics only. The calls to Fief (discovery, key set,
// userinfo, token endpoint) become client spans with an otelhttp transport
// given to [fief.WithHTTPClient], as above; the access token travels in
// the Authorization header, which otelhttp does not record, and never in
// a URL. A userinfo call is a child of the request's span; the fetches of
// the configuration and of the key set serve every request waiting for
// them, on the Client's background context, and so start traces of their
// own.
package fiefotel
