package expiring

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"
)

func key(i int) [32]byte { return sha256.Sum256(fmt.Append(nil, i)) }

func TestExpiry(t *testing.T) {
	var m Map[string]
	t0 := time.Unix(1_000_000, 0)
	m.Put(key(1), "a", t0, t0.Add(time.Minute))
	if v, ok := m.Get(key(1), t0.Add(59*time.Second)); !ok || v != "a" {
		t.Fatalf("before expiry: %q, %v", v, ok)
	}
	if _, ok := m.Get(key(1), t0.Add(time.Minute)); ok {
		t.Fatal("held at its expiry")
	}
	if _, ok := m.Get(key(2), t0); ok {
		t.Fatal("a key never put is held")
	}
	// A put drops what has expired.
	m.Put(key(2), "b", t0.Add(2*time.Minute), t0.Add(3*time.Minute))
	if m.Len() != 1 || m.queued() != 1 {
		t.Fatalf("after expiry: %d held, %d queued; want 1, 1", m.Len(), m.queued())
	}
}

func TestBound(t *testing.T) {
	m := Map[int]{Max: 100}
	t0 := time.Unix(1_000_000, 0)
	for i := range 1000 {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		m.Put(key(i), i, now, now.Add(time.Hour))
		if m.Len() > 100 || m.queued() > 100 {
			t.Fatalf("after %d puts: %d held, %d queued", i+1, m.Len(), m.queued())
		}
	}
	now := t0.Add(time.Second)
	if _, ok := m.Get(key(899), now); ok {
		t.Error("an old entry is held beyond the bound")
	}
	for i := 900; i < 1000; i++ {
		if v, ok := m.Get(key(i), now); !ok || v != i {
			t.Fatalf("entry %d: %d, %v; want the newest 100 held", i, v, ok)
		}
	}
}

// TestPutAgain: a key put again keeps its last value and expiry; the
// queue entry of its first put does not remove it.
func TestPutAgain(t *testing.T) {
	var m Map[string]
	t0 := time.Unix(1_000_000, 0)
	m.Put(key(1), "first", t0, t0.Add(time.Minute))
	m.Put(key(1), "second", t0.Add(30*time.Second), t0.Add(90*time.Second))
	// This put drops the first put's queue entry, expired at now.
	m.Put(key(2), "b", t0.Add(61*time.Second), t0.Add(121*time.Second))
	if v, ok := m.Get(key(1), t0.Add(61*time.Second)); !ok || v != "second" {
		t.Fatalf("key put again: %q, %v; want its second put, held until its own expiry", v, ok)
	}
	m.Put(key(3), "c", t0.Add(91*time.Second), t0.Add(151*time.Second))
	if _, ok := m.Get(key(1), t0.Add(91*time.Second)); ok || m.Len() != 2 {
		t.Fatalf("after its second expiry: held %v, %d entries; want dropped, 2", ok, m.Len())
	}
}

// TestQueueCompacts: the queue does not grow without bound under a
// steady stream of short-lived entries.
func TestQueueCompacts(t *testing.T) {
	var m Map[struct{}]
	t0 := time.Unix(1_000_000, 0)
	for i := range 100_000 {
		now := t0.Add(time.Duration(i) * time.Second)
		m.Put(key(i), struct{}{}, now, now.Add(10*time.Second))
	}
	if m.Len() > 11 || cap(m.queue) > 64 {
		t.Errorf("%d held, queue capacity %d after 100,000 puts of 10-second entries", m.Len(), cap(m.queue))
	}
}

// TestOutOfOrder: an entry put after one that expires later (its owner read
// the clock before the other put) is refused by Get from its own expiry,
// and dropped once the entry put before it expires.
func TestOutOfOrder(t *testing.T) {
	var m Map[int]
	t0 := time.Unix(1_000_000, 0)
	m.Put(key(1), 1, t0.Add(time.Millisecond), t0.Add(time.Minute+time.Millisecond))
	m.Put(key(2), 2, t0, t0.Add(time.Minute)) // out of order
	at := t0.Add(time.Minute)
	if _, ok := m.Get(key(2), at); ok {
		t.Error("the entry put out of order is held past its expiry")
	}
	if v, ok := m.Get(key(1), at); !ok || v != 1 {
		t.Errorf("the entry put first: %d, %v", v, ok)
	}
	m.Put(key(3), 3, at, at.Add(time.Minute))
	if m.Len() != 3 {
		t.Errorf("%d held, want 3: the expired entry stays behind the unexpired one put before it", m.Len())
	}
	later := at.Add(time.Millisecond)
	m.Put(key(4), 4, later, later.Add(time.Minute))
	if m.Len() != 2 || m.queued() != 2 {
		t.Errorf("%d held, %d queued; want 2, 2: both dropped once the first expired", m.Len(), m.queued())
	}
}
