package oci

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
)

type okTransport struct{}

func (okTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK}, nil
}

// TestHTTPSOnly: ggcr would talk HTTP to private addresses on its own;
// without Insecure only loopback may be plain HTTP.
func TestHTTPSOnly(t *testing.T) {
	cases := map[string]bool{
		"https://10.0.0.5:5000/v2/":      true,
		"http://127.0.0.1:5000/v2/":      true,
		"http://[::1]:5000/v2/":          true,
		"http://localhost:5000/v2/":      true,
		"http://10.0.0.5:5000/v2/":       false,
		"http://192.168.1.2/v2/":         false,
		"http://registry.local:5000/v2/": false,
	}
	for url, allowed := range cases {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		assert.NoError(t, err)
		_, err = httpsOnly{okTransport{}}.RoundTrip(req)
		assert.Equal(t, allowed, err == nil, url)
	}
}
