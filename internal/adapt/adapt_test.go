package adapt

import "testing"

func TestMuxPattern(t *testing.T) {
	for path, want := range map[string]string{
		"/widgets/:id":           "/widgets/{id}",
		"/users/:user/posts/:id": "/users/{user}/posts/{id}",
		"/files/*filepath":       "/files/{filepath...}", // gin
		"/static/*":              "/static/{*...}",       // echo
		"/static*":               "/static{*...}",        // echo, mid-segment
		"/v:version/items":       "/v{version}/items",
		"/exact/":                "/exact/{$}",
		"/":                      "/{$}",
		"/plain":                 "/plain",
		"/users/:id/files/*rest": "/users/{id}/files/{rest...}",
		"/a/:b/":                 "/a/{b}/{$}",
	} {
		if got := muxPattern(path); got != want {
			t.Errorf("muxPattern(%q) = %q, want %q", path, got, want)
		}
	}
}
