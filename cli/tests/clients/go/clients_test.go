// go-redis against the server at $REDIS_HOST:$REDIS_PORT (started by
// ../run.sh). Each test starts from FLUSHDB. DBKV_CLIENTS_TARGET=redis skips
// the DBKV.* commands so the suite can be proven against a real redis-server.
//
// go-redis v9 opens every connection with HELLO 3, so this suite exercises
// the server's RESP3 side (maps, nulls, push messages for pub/sub).
package clients

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func client(t *testing.T) *redis.Client {
	t.Helper()
	port := os.Getenv("REDIS_PORT")
	if port == "" {
		t.Skip("REDIS_PORT not set (run ../run.sh)")
	}
	host := os.Getenv("REDIS_HOST")
	if host == "" {
		host = "127.0.0.1"
	}
	c := redis.NewClient(&redis.Options{
		Addr: net.JoinHostPort(host, port),
		// A hung reply fails the test instead of stalling it.
		ReadTimeout:  10 * time.Second,
		WriteTimeout: 10 * time.Second,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// fresh is a client on an emptied database.
func fresh(t *testing.T) (*redis.Client, context.Context) {
	t.Helper()
	c := client(t)
	ctx := context.Background()
	if err := c.FlushDB(ctx).Err(); err != nil {
		t.Fatalf("FLUSHDB: %v", err)
	}
	return c, ctx
}

func dbkvOnly(t *testing.T) {
	if os.Getenv("DBKV_CLIENTS_TARGET") == "redis" {
		t.Skip("DBKV.* commands: target is plain Redis")
	}
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func TestSetGet(t *testing.T) {
	c, ctx := fresh(t)
	noErr(t, "SET", c.Set(ctx, "go:s", "hello", 0).Err())
	v, err := c.Get(ctx, "go:s").Result()
	noErr(t, "GET", err)
	eq(t, "GET", v, "hello")

	// Binary-safe values, and empty vs missing.
	bin := string([]byte{0, '\r', '\n', 0xff, 'x'})
	noErr(t, "SET bin", c.Set(ctx, "go:bin", bin, 0).Err())
	v, err = c.Get(ctx, "go:bin").Result()
	noErr(t, "GET bin", err)
	eq(t, "GET bin", v, bin)
	noErr(t, "SET empty", c.Set(ctx, "go:empty", "", 0).Err())
	v, err = c.Get(ctx, "go:empty").Result()
	noErr(t, "GET empty", err)
	eq(t, "GET empty", v, "")
	_, err = c.Get(ctx, "go:missing").Result()
	if !errors.Is(err, redis.Nil) {
		t.Errorf("GET missing: got err %v, want redis.Nil", err)
	}

	ok, err := c.SetNX(ctx, "go:s", "other", 0).Result()
	noErr(t, "SETNX", err)
	eq(t, "SETNX on existing", ok, false)
}

func TestTTL(t *testing.T) {
	c, ctx := fresh(t)
	noErr(t, "SET EX", c.Set(ctx, "go:t", "v", 100*time.Second).Err())
	ttl, err := c.TTL(ctx, "go:t").Result()
	noErr(t, "TTL", err)
	if ttl < 98*time.Second || ttl > 100*time.Second {
		t.Errorf("TTL after EX 100: %v", ttl)
	}
	noErr(t, "SET PX", c.Set(ctx, "go:short", "v", 50*time.Millisecond).Err())
	time.Sleep(200 * time.Millisecond)
	if err := c.Get(ctx, "go:short").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("GET after PX expiry: got %v, want redis.Nil", err)
	}
	// go-redis maps -2 (missing) to a negative duration.
	ttl, err = c.TTL(ctx, "go:missing").Result()
	noErr(t, "TTL missing", err)
	eq(t, "TTL missing", ttl, time.Duration(-2))
}

func TestCounters(t *testing.T) {
	c, ctx := fresh(t)
	n, err := c.Incr(ctx, "go:n").Result()
	noErr(t, "INCR", err)
	eq(t, "INCR", n, int64(1))
	n, _ = c.IncrBy(ctx, "go:n", 41).Result()
	eq(t, "INCRBY", n, int64(42))
	n, _ = c.Decr(ctx, "go:n").Result()
	eq(t, "DECR", n, int64(41))
	f, err := c.IncrByFloat(ctx, "go:n", 0.5).Result()
	noErr(t, "INCRBYFLOAT", err)
	eq(t, "INCRBYFLOAT", f, 41.5)

	noErr(t, "SET", c.Set(ctx, "go:s", "abc", 0).Err())
	err = c.Incr(ctx, "go:s").Err()
	if err == nil || !strings.HasPrefix(err.Error(), "ERR value is not an integer") {
		t.Errorf("INCR non-integer: got %v", err)
	}
}

func TestMSetMGet(t *testing.T) {
	c, ctx := fresh(t)
	noErr(t, "MSET", c.MSet(ctx, "go:a", "1", "go:b", "2").Err())
	vals, err := c.MGet(ctx, "go:a", "go:missing", "go:b").Result()
	noErr(t, "MGET", err)
	eq(t, "MGET", fmt.Sprint(vals), fmt.Sprint([]any{"1", nil, "2"}))
	n, _ := c.Del(ctx, "go:a", "go:b", "go:missing").Result()
	eq(t, "DEL", n, int64(2))
	n, _ = c.Exists(ctx, "go:a").Result()
	eq(t, "EXISTS", n, int64(0))
}

func TestPipelined(t *testing.T) {
	c, ctx := fresh(t)
	const n = 1000
	gets := make([]*redis.StringCmd, n)
	cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := 0; i < n; i++ {
			p.Set(ctx, fmt.Sprintf("go:p:%d", i), i, 0)
		}
		for i := 0; i < n; i++ {
			gets[i] = p.Get(ctx, fmt.Sprintf("go:p:%d", i))
		}
		return nil
	})
	noErr(t, "Pipelined", err)
	eq(t, "replies", len(cmds), 2*n)
	for i, g := range gets {
		if g.Val() != fmt.Sprint(i) {
			t.Fatalf("pipelined GET %d: got %q", i, g.Val())
		}
	}
	size, _ := c.DBSize(ctx).Result()
	eq(t, "DBSIZE", size, int64(n))
}

func TestTxPipelined(t *testing.T) {
	c, ctx := fresh(t)
	var incr *redis.IntCmd
	var get *redis.StringCmd
	_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "go:tx", 1, 0)
		incr = p.Incr(ctx, "go:tx")
		get = p.Get(ctx, "go:tx")
		return nil
	})
	noErr(t, "MULTI/EXEC", err)
	eq(t, "INCR in tx", incr.Val(), int64(2))
	eq(t, "GET in tx", get.Val(), "2")
}

func TestWatchConflict(t *testing.T) {
	c, ctx := fresh(t)
	other := client(t)
	noErr(t, "SET", c.Set(ctx, "go:w", "0", 0).Err())
	err := c.Watch(ctx, func(tx *redis.Tx) error {
		if _, err := tx.Get(ctx, "go:w").Result(); err != nil {
			return err
		}
		// Another client changes the watched key: EXEC must abort.
		if err := other.Set(ctx, "go:w", "changed", 0).Err(); err != nil {
			return err
		}
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "go:w", "mine", 0)
			return nil
		})
		return err
	}, "go:w")
	if !errors.Is(err, redis.TxFailedErr) {
		t.Fatalf("WATCH conflict: got %v, want redis.TxFailedErr", err)
	}
	v, _ := c.Get(ctx, "go:w").Result()
	eq(t, "value after aborted tx", v, "changed")

	// Unmodified, the same transaction commits.
	err = c.Watch(ctx, func(tx *redis.Tx) error {
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "go:w", "mine", 0)
			return nil
		})
		return err
	}, "go:w")
	noErr(t, "WATCH without conflict", err)
	v, _ = c.Get(ctx, "go:w").Result()
	eq(t, "value after tx", v, "mine")
}

func TestPubSub(t *testing.T) {
	c, ctx := fresh(t)
	pub := client(t)
	sub := c.Subscribe(ctx, "go:chan")
	defer sub.Close()
	// Receive waits for the subscribe confirmation, so PUBLISH cannot race it.
	msg, err := sub.ReceiveTimeout(ctx, 5*time.Second)
	noErr(t, "subscribe confirmation", err)
	if s, ok := msg.(*redis.Subscription); !ok || s.Kind != "subscribe" || s.Channel != "go:chan" {
		t.Fatalf("subscribe confirmation: got %#v", msg)
	}
	n, err := pub.Publish(ctx, "go:chan", "hello").Result()
	noErr(t, "PUBLISH", err)
	eq(t, "PUBLISH receivers", n, int64(1))
	msg, err = sub.ReceiveTimeout(ctx, 5*time.Second)
	noErr(t, "receive", err)
	m, ok := msg.(*redis.Message)
	if !ok || m.Channel != "go:chan" || m.Payload != "hello" {
		t.Fatalf("message: got %#v", msg)
	}

	noErr(t, "PSUBSCRIBE", sub.PSubscribe(ctx, "go:news.*"))
	msg, err = sub.ReceiveTimeout(ctx, 5*time.Second)
	noErr(t, "psubscribe confirmation", err)
	if s, ok := msg.(*redis.Subscription); !ok || s.Kind != "psubscribe" {
		t.Fatalf("psubscribe confirmation: got %#v", msg)
	}
	n, _ = pub.Publish(ctx, "go:news.tech", "pattern").Result()
	eq(t, "PUBLISH to pattern receivers", n, int64(1))
	msg, err = sub.ReceiveTimeout(ctx, 5*time.Second)
	noErr(t, "receive pmessage", err)
	m, ok = msg.(*redis.Message)
	if !ok || m.Pattern != "go:news.*" || m.Channel != "go:news.tech" || m.Payload != "pattern" {
		t.Fatalf("pmessage: got %#v", msg)
	}
}

func TestDBKVLock(t *testing.T) {
	dbkvOnly(t)
	c, ctx := fresh(t)
	key := fmt.Sprintf("go:lock:%d", time.Now().UnixNano())
	t1, err := c.Do(ctx, "DBKV.LOCK", key, "alice", 10000).Int64()
	noErr(t, "DBKV.LOCK", err)
	if err := c.Do(ctx, "DBKV.LOCK", key, "bob", 10000).Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("DBKV.LOCK held by another: got %v, want nil reply", err)
	}
	t2, err := c.Do(ctx, "DBKV.LOCK", key, "alice", 10000).Int64()
	noErr(t, "DBKV.LOCK refresh", err)
	if t2 <= t1 {
		t.Errorf("refresh token %d not larger than %d", t2, t1)
	}
	do := func(want int64, args ...any) {
		t.Helper()
		got, err := c.Do(ctx, args...).Int64()
		if err != nil || got != want {
			t.Errorf("%v: got %d, %v; want %d", args, got, err, want)
		}
	}
	do(-1, "DBKV.EXTENDLOCK", key, "bob", 10000)
	do(1, "DBKV.EXTENDLOCK", key, "alice", 10000)
	do(-1, "DBKV.UNLOCK", key, "bob")
	do(1, "DBKV.UNLOCK", key, "alice")
	do(0, "DBKV.UNLOCK", key, "alice")
	do(0, "DBKV.EXTENDLOCK", key, "alice", 10000)
	t3, err := c.Do(ctx, "DBKV.LOCK", key, "bob", 10000).Int64()
	noErr(t, "DBKV.LOCK by bob", err)
	if t3 <= t2 {
		t.Errorf("bob's token %d not larger than %d", t3, t2)
	}
	do(1, "DBKV.UNLOCK", key, "bob")

	noErr(t, "SET", c.Set(ctx, "go:durable", "yes", 0).Err())
	s, err := c.Do(ctx, "DBKV.SYNC").Text()
	noErr(t, "DBKV.SYNC", err)
	eq(t, "DBKV.SYNC", s, "OK")
}
