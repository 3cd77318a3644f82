package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDataDirTakesOneKiln(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	unlock, err := lockDataDir(dir)
	require.NoError(t, err)

	_, err = lockDataDir(dir)
	require.Error(t, err)
	assert.Equal(t, fmt.Sprintf("data dir %s is in use by kiln (pid %d): stop it, or give this one another --data-dir", dir, os.Getpid()), err.Error())

	unlock()
	unlock2, err := lockDataDir(dir)
	require.NoError(t, err, "a released data dir is free again")
	unlock2()
}
