package gateway_test

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/gateway"
	"github.com/vmcp/vmcp/internal/redistest"
)

func TestRedisPasswordComesFromTheNamedVariable(t *testing.T) {
	_, wb := webBackend(t)
	rs := redistest.Start(t)
	const secret = "s3cret-redis-password"
	redisCommand(t, rs.Addr, "CONFIG SET requirepass "+secret)
	cfg := baseConfig(wb)
	cfg.Store.Type = config.StoreRedis
	cfg.Store.Redis.Address = rs.Addr

	// Without the password Redis refuses every command: sessions are refused.
	r := startReplica(t, cfg)
	if code, _, body := rawPost(t, r.URL, "", initializeBody); code != http.StatusServiceUnavailable {
		t.Errorf("initialize without the Redis password: HTTP %d %s, want 503", code, body)
	}

	cfg.Store.Redis.PasswordEnv = "VMCP_TEST_REDIS_PASSWORD"
	t.Setenv("VMCP_TEST_REDIS_PASSWORD", "")
	if _, err := gateway.New(cfg, gateway.Options{}); err == nil || !strings.Contains(err.Error(), "store.redis.passwordEnv") {
		t.Fatalf("New with the password variable empty = %v, want an error naming store.redis.passwordEnv", err)
	}
	t.Setenv("VMCP_TEST_REDIS_PASSWORD", secret)
	r = startReplica(t, cfg)
	code, _, body := rawPost(t, r.URL, "", initializeBody)
	if code != http.StatusOK {
		t.Errorf("initialize with the password from the variable: HTTP %d %s, want 200", code, body)
	}
	if strings.Contains(body, secret) || strings.Contains(r.Logs.String(), secret) {
		t.Error("the Redis password appeared in a response or the log")
	}
}

// redisSubscribers returns how many clients are subscribed to channel.
func redisSubscribers(t *testing.T, addr, channel string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("PUBSUB NUMSUB " + channel + "\r\n")); err != nil {
		t.Fatal(err)
	}
	// *2, $len, channel, :count
	r := bufio.NewReader(c)
	var last string
	for range 4 {
		if last, err = r.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	n, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(last), ":"))
	if err != nil {
		t.Fatalf("PUBSUB NUMSUB answered %q", last)
	}
	return n
}

// redisCommand sends one inline command to the Redis server at addr and
// fails the test unless it answers +OK.
func redisCommand(t *testing.T, addr, cmd string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "+OK" {
		t.Fatalf("redis %q: %q %v", strings.Fields(cmd)[0], line, err)
	}
}
