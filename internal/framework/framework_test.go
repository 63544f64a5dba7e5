package framework_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hoardcache/hoard/internal/framework"
)

// adapterNext is an adapter's own handler; other handlers are not.
type adapterNext struct{}

func (adapterNext) ServeHTTP(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(201) }

// state detaches only its adapter's handler.
type state struct{}

func (state) Detach(next http.Handler) http.Handler {
	if _, ours := next.(adapterNext); !ours {
		return nil
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(202) })
}

func status(h http.Handler) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	return rec.Code
}

// TestHandler: a background run calls the adapter's detached handler when
// hoard wraps the adapter's own handler, and the route's handler otherwise
// (no adapter, or hoard's middleware used directly inside a framework
// handler that an adapter's route serves).
func TestHandler(t *testing.T) {
	plain := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(203) })
	bare := httptest.NewRequest("GET", "/", nil)
	adapted := bare.WithContext(context.WithValue(bare.Context(), framework.Key{}, state{}))
	for _, tc := range []struct {
		name string
		r    *http.Request
		next http.Handler
		want int
	}{
		{"no adapter", bare, plain, 203},
		{"adapter's handler", adapted, adapterNext{}, 202},
		{"another handler under an adapter", adapted, plain, 203},
		{"adapter's handler without its state", bare, adapterNext{}, 201},
	} {
		if got := status(framework.Background(tc.r, tc.next)); got != tc.want {
			t.Errorf("%s: the background run answered %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestRouted: a request is an adapter's when its state is in its context.
func TestRouted(t *testing.T) {
	bare := httptest.NewRequest("HEAD", "/", nil)
	if framework.Routed(bare) {
		t.Error("a request without an adapter's state is Routed")
	}
	if !framework.Routed(bare.WithContext(context.WithValue(bare.Context(), framework.Key{}, state{}))) {
		t.Error("a request with an adapter's state is not Routed")
	}
	if framework.Routed(bare.WithContext(context.WithValue(bare.Context(), framework.Key{}, nil))) {
		t.Error("a request whose state is shadowed (a detached run) is Routed")
	}
}
