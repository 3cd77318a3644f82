package cli

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSlowBodyIsCutOff sends a webhook's headers and then its body a byte
// at a time: the server must end the request after its read timeout, not
// keep the connection as long as bytes trickle in.
func TestSlowBodyIsCutOff(t *testing.T) {
	defer func(old timeouts) { httpTimeouts = old }(httpTimeouts)
	httpTimeouts.read, httpTimeouts.header = time.Second, time.Second
	srv, err := listenHTTP("127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	}), zerolog.Nop())
	require.NoError(t, err)
	defer shutdownHTTP(srv)

	conn, err := net.Dial("tcp", srv.Addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /hooks/github HTTP/1.1\r\nHost: kiln\r\nContent-Length: 1000\r\n\r\n")
	require.NoError(t, err)
	began := time.Now()
	closed := make(chan time.Duration, 1)
	go func() {
		_, _ = bufio.NewReader(conn).ReadString('\n') // the answer, or EOF
		closed <- time.Since(began)
	}()
	for i := 0; i < 20; i++ {
		select {
		case took := <-closed:
			assert.Less(t, took, 5*time.Second)
			return
		case <-time.After(500 * time.Millisecond):
			_, _ = conn.Write([]byte("x"))
		}
	}
	t.Fatal("a body sent a byte every half second kept the connection for 10 s")
}
