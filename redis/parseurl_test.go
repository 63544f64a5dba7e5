package redis_test

import (
	"crypto/tls"
	"reflect"
	"strings"
	"testing"

	"github.com/hoardcache/hoard/redis"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want redis.Options
	}{
		{"redis://localhost:6379", redis.Options{Addrs: []string{"localhost:6379"}}},
		{"redis://localhost", redis.Options{Addrs: []string{"localhost:6379"}}},
		{"redis://localhost:6380/", redis.Options{Addrs: []string{"localhost:6380"}}},
		{"redis://10.0.0.1:7000/3", redis.Options{Addrs: []string{"10.0.0.1:7000"}, DB: 3}},
		{"redis://:pa%40ss@h:1/0", redis.Options{Addrs: []string{"h:1"}, Password: "pa@ss"}},
		{"redis://app:pw@h:1", redis.Options{Addrs: []string{"h:1"}, Username: "app", Password: "pw"}},
		{"redis://[::1]:6379/2", redis.Options{Addrs: []string{"[::1]:6379"}, DB: 2}},
		{"redis://[::1]", redis.Options{Addrs: []string{"[::1]:6379"}}},
		{"redis://h:7000?cluster=true", redis.Options{Addrs: []string{"h:7000"}, Cluster: true}},
		{"redis://h1:7000,h2:7001/?cluster=1", redis.Options{Addrs: []string{"h1:7000", "h2:7001"}, Cluster: true}},
		{"redis://h:1?cluster=false", redis.Options{Addrs: []string{"h:1"}}},
		{"rediss://u:p@cache.example.com:6380/1", redis.Options{
			Addrs: []string{"cache.example.com:6380"}, Username: "u", Password: "p", DB: 1,
			TLSConfig: &tls.Config{ServerName: "cache.example.com", MinVersion: tls.VersionTLS12},
		}},
		// Cluster nodes are verified each under the name it is dialed by.
		{"rediss://h1:7000,h2:7000?cluster=true", redis.Options{
			Addrs: []string{"h1:7000", "h2:7000"}, Cluster: true,
			TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12},
		}},
	} {
		t.Run(tc.url, func(t *testing.T) {
			got, err := redis.ParseURL(tc.url)
			if err != nil {
				t.Fatalf("ParseURL: %v", err)
			}
			if (got.TLSConfig == nil) != (tc.want.TLSConfig == nil) {
				t.Fatalf("TLSConfig = %v, want %v", got.TLSConfig, tc.want.TLSConfig)
			}
			if got.TLSConfig != nil {
				if got.TLSConfig.ServerName != tc.want.TLSConfig.ServerName || got.TLSConfig.MinVersion != tc.want.TLSConfig.MinVersion {
					t.Errorf("TLSConfig ServerName=%q MinVersion=%x, want %q %x", got.TLSConfig.ServerName,
						got.TLSConfig.MinVersion, tc.want.TLSConfig.ServerName, tc.want.TLSConfig.MinVersion)
				}
				got.TLSConfig, tc.want.TLSConfig = nil, nil
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseURL = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseURLErrors(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want string // in the error
	}{
		{"", "no scheme"},
		{"localhost:6379", "redis://"},
		{"http://h:1", `scheme "http"`},
		{"redis:h:1", "lacks //"},
		{"redis://", "no host"},
		{"redis://:6379", "no host"},
		{"redis://h:notaport", "port"},
		{"redis://h:0", "port"},
		{"redis://h:1/x", "database number"},
		{"redis://h:1/-1", "database number"},
		{"redis://h:1?cluster=maybe", "boolean"},
		{"redis://h:1?timeout=1s", `"timeout"`},
		{"redis://h:1,h:2", "cluster=true"},
		{"redis://h:1/2?cluster=true", "DB 0"},
		{"redis://user:hunter2@h:1/x", "database number"},
		{"redis://h:1%zz", "invalid URL"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			_, err := redis.ParseURL(tc.url)
			if err == nil {
				t.Fatal("ParseURL succeeded")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not contain %q", msg, tc.want)
			}
			if strings.Contains(msg, "hunter2") {
				t.Errorf("error %q reveals the password", msg)
			}
			if !strings.Contains(msg, "redis") {
				t.Errorf("error %q does not say it is about Redis", msg)
			}
		})
	}
}
