// Package expiring is a bounded map of 32-byte keys whose entries expire:
// the replay window of the login flow's consumed states and the reuse
// window of session refreshes. It is not safe for concurrent use; its
// owners hold their own lock.
package expiring

import "time"

// Map holds values until their expiry, and at most Max of them: beyond
// that, the oldest puts are dropped early. It drops entries in the order
// of their puts, and stops at the first that has not expired: puts are
// meant to come in about the order of their expiries (the time of the put
// plus a fixed window). One that comes out of order (its owner read the
// clock before another put got in first, as with the login flow's
// consumed states) costs nothing in correctness, since Get checks each
// entry's own expiry: it is only dropped later, once the entries put
// before it are. The zero Map is empty and unbounded.
type Map[V any] struct {
	// Max bounds the entries held; 0 means no bound.
	Max int

	m     map[[32]byte]entry[V]
	queue []queued // in the order of Put
	head  int      // queue[:head] is spent
}

type entry[V any] struct {
	v       V
	expires time.Time
}

type queued struct {
	key     [32]byte
	expires time.Time
}

// Get returns the value of key if it is held and not expired at now.
func (m *Map[V]) Get(key [32]byte, now time.Time) (V, bool) {
	e, ok := m.m[key]
	if !ok || !now.Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Put holds v for key until expires, replacing what key held. It first
// drops the entries expired at now and, while Max entries are held, the
// oldest.
func (m *Map[V]) Put(key [32]byte, v V, now, expires time.Time) {
	if m.m == nil {
		m.m = make(map[[32]byte]entry[V])
	}
	for m.head < len(m.queue) {
		q := m.queue[m.head]
		if now.Before(q.expires) && (m.Max <= 0 || len(m.m) < m.Max) {
			break
		}
		// A key put again since is queued again: only its last put's
		// queue entry removes it.
		if e, ok := m.m[q.key]; ok && e.expires.Equal(q.expires) {
			delete(m.m, q.key)
		}
		m.queue[m.head] = queued{}
		m.head++
	}
	if m.head > len(m.queue)/2 {
		m.queue = append(m.queue[:0], m.queue[m.head:]...)
		m.head = 0
	}
	m.m[key] = entry[V]{v, expires}
	m.queue = append(m.queue, queued{key, expires})
}

// Len returns the number of entries held, expired ones not yet dropped
// included.
func (m *Map[V]) Len() int { return len(m.m) }

// queued returns the length of the live queue (for tests).
func (m *Map[V]) queued() int { return len(m.queue) - m.head }
