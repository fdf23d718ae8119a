// Package rediscache puts on Redis what the instances of an application
// share: users' info (Cache, a fief.UserInfoCache: a user whose info one
// instance fetched from Fief's userinfo endpoint is then served by every
// instance from Redis, until the entry expires or is deleted), and the
// refreshes of browser sessions (RefreshCoordinator, a
// fief.RefreshCoordinator: concurrent requests of one session, on any
// instance, make one refresh at Fief, which rotates refresh tokens).
//
// Create a Cache with New from any go-redis v9 client (redis.UniversalClient:
// a single node with redis.NewClient, Sentinel with redis.NewFailoverClient,
// Cluster with redis.NewClusterClient, or redis.NewUniversalClient picking
// one of them from its options) and give it to the middleware:
//
//	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
//		Addrs:                 []string{"redis:6379"},
//		ContextTimeoutEnabled: true,
//	})
//	auth, err := fief.NewAuthenticator(client, fief.WithUserInfoCache(rediscache.New(rdb)))
//
// # Entries
//
// Each user is one Redis string under the key prefix + user ID (prefix
// "fief:userinfo:" by default, see WithPrefix), holding the user's info as a
// JSON object and set with a TTL (one hour by default, see WithTTL). Every
// entry expiring on its own is what evicts users: a user's changes made
// elsewhere (in Fief's admin, by another application) are seen after at
// most the TTL. Delete evicts one user at once; call it after the
// application changes a user's profile, password or email address, or use
// fief.Refresh on the routes that must see such changes. Because every key
// has a TTL, a Redis shared with other data can also evict entries under
// memory pressure with maxmemory-policy volatile-lru (or allkeys-lru); an
// evicted entry is just a miss. Under noeviction, a full Redis refuses
// writes: Set then fails, which the middleware logs and otherwise ignores.
//
// The keys hold users' email addresses and custom fields in clear: protect
// the Redis like any store of personal data (network access, ACL, TLS), and
// give each cache its own prefix when one Redis serves several applications
// or Fief tenants.
//
// # Encoding
//
// Entries are the JSON encoding of the UserInfo, decoded like Fief's own
// answers: into map[string]any and []any, with numbers as json.Number, so
// that what the middleware got from Fief comes back exactly, big integers
// (12345678901234567890) and decimals (1.5) included, dates being strings
// in JSON already. A value that is not JSON data in the first place (a
// float64 set by the application, a time.Time) comes back as JSON decodes
// it: a json.Number, a string.
//
// Get treats an entry that is not a JSON object (written by something else
// under the same prefix, or corrupted) as a miss: it deletes the entry and
// logs a warning through WithLogger's logger, and the middleware then
// fetches the user from Fief and stores a good entry.
//
// # Failures
//
// Redis failing never fails a request. Get, Set and Delete return Redis's
// errors, wrapped, and do not log them: the middleware logs them at Warn
// level through fief.WithLogger and treats a failed Get as a miss, calling
// Fief's userinfo endpoint, so that requests keep succeeding, a little
// slower, while Redis is down.
//
// Every call is bounded by its context and by the Cache's timeout
// (WithTimeout, 100ms by default), however the client is configured: a call
// that Redis does not answer in time returns an error wrapping
// context.DeadlineExceeded, so that a slow or unreachable Redis adds at most
// the timeout to a request (twice on a miss: Get, then Set). With go-redis's
// default options (ContextTimeoutEnabled false) the abandoned command still
// runs in the background until the client's own ReadTimeout or WriteTimeout;
// create the client with ContextTimeoutEnabled: true so that it stops at
// once and gives its connection back.
//
// The Cache does not close the client it was given.
//
// # Session refresh
//
// A RefreshCoordinator (NewRefreshCoordinator) makes the instances of an
// application whose fief.LoginFlow refreshes sessions (RefreshSessions)
// refresh each session once: the first request of a session whose access
// token has expired takes a lock keyed by a hash of its refresh token (never
// the token), refreshes at Fief and stores the outcome, sealed by the
// LoginFlow, for fief.RefreshReuseWindow; the others, on any instance, wait
// for it. Redis failing never fails a request: the LoginFlow then refreshes
// in its own process and logs the failure. See RefreshCoordinator for the
// protocol and its limits.
package rediscache
