package motoserver_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/test/motoserver"
)

func TestStartResetEnv(t *testing.T) {
	s := motoserver.Start(t)
	resp, err := http.Get(s.URL + "/moto-api/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	if err := s.Reset(); err != nil {
		t.Fatal(err)
	}
	env := strings.Join(s.Env(), "\n")
	assert.Contains(t, env, "AWS_ENDPOINT_URL="+s.URL)
	assert.Contains(t, env, "AWS_REGION=us-east-1")
	assert.Contains(t, env, "AWS_EC2_METADATA_DISABLED=true")
}

// The process group dies with the test, so no moto outlives it.
func TestStopKillsServer(t *testing.T) {
	var url string
	t.Run("owner", func(t *testing.T) { url = motoserver.Start(t).URL })
	_, err := http.Get(url + "/moto-api/")
	assert.Error(t, err, "moto_server still answers after its test ended")
}
