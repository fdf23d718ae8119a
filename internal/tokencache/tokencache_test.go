package tokencache

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func always(int) bool { return true }

func TestGetPutExpiry(t *testing.T) {
	c := New[int](10)
	now := time.Unix(1000, 0)
	c.Put("tok", 42, now.Add(time.Minute), 1, now)
	e, ok := c.Get("tok", now, 1, always)
	if !ok || e.Value != 42 {
		t.Fatalf("Get = %v, %v", e, ok)
	}
	if _, ok := c.Get("other", now, 1, always); ok {
		t.Fatal("unknown token served")
	}
	// At exp the entry is gone, never served.
	if _, ok := c.Get("tok", now.Add(time.Minute), 1, always); ok {
		t.Fatal("expired entry served")
	}
	if c.Len() != 0 {
		t.Fatalf("Len = %d after expiry", c.Len())
	}
	// Already-expired results are not stored.
	c.Put("old", 1, now, 1, now)
	if c.Len() != 0 {
		t.Fatal("expired result stored")
	}
}

func TestKeyVersionRecheck(t *testing.T) {
	c := New[int](10)
	now := time.Unix(1000, 0)
	c.Put("tok", 1, now.Add(time.Hour), 1, now)
	checks := 0
	held := func(int) bool { checks++; return true }
	for i := 0; i < 3; i++ {
		if _, ok := c.Get("tok", now, 2, held); !ok {
			t.Fatal("entry dropped while its key is held")
		}
	}
	if checks != 1 {
		t.Fatalf("re-checks = %d, want 1 per version change", checks)
	}
	if _, ok := c.Get("tok", now, 3, func(int) bool { return false }); ok {
		t.Fatal("entry served after its key left the set")
	}
	if _, ok := c.Get("tok", now, 3, always); ok || c.Len() != 0 {
		t.Fatal("dropped entry came back")
	}
}

func TestBound(t *testing.T) {
	c := New[int](100)
	now := time.Unix(1000, 0)
	for i := 0; i < 1000; i++ {
		c.Put(fmt.Sprint(i), i, now.Add(time.Hour), 1, now)
		if c.Len() > 100 {
			t.Fatalf("Len = %d > bound after %d inserts", c.Len(), i+1)
		}
	}
	// Expired entries go first.
	c2 := New[int](10)
	for i := 0; i < 5; i++ {
		c2.Put(fmt.Sprint("short", i), i, now.Add(time.Second), 1, now)
	}
	later := now.Add(2 * time.Second)
	for i := 0; i < 6; i++ {
		c2.Put(fmt.Sprint("long", i), i, now.Add(time.Hour), 1, later)
	}
	for i := 0; i < 6; i++ {
		if _, ok := c2.Get(fmt.Sprint("long", i), later, 1, always); !ok {
			t.Fatalf("live entry long%d evicted before expired ones", i)
		}
	}
}

func TestConcurrent(t *testing.T) {
	c := New[int](50)
	now := time.Unix(1000, 0)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				k := fmt.Sprint(i % 200)
				c.Put(k, i, now.Add(time.Hour), 1, now)
				c.Get(k, now, uint64(i%3), always)
			}
		}()
	}
	wg.Wait()
	if n := c.Len(); n < 0 || n > 50+8 {
		t.Fatalf("Len = %d", n)
	}
}
