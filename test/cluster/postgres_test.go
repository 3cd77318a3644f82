package cluster

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/kiln-ci/kiln/internal/devserver"
)

// postgresGlob finds Debian's PostgreSQL server binaries (package
// postgresql), one directory per major version.
const postgresGlob = "/usr/lib/postgresql/*/bin/initdb"

// pgUser is the role initdb makes the superuser; temporalpg logs in as it.
const pgUser = "temporal"

// errNoPostgres is why the tests skip on a machine without PostgreSQL.
var errNoPostgres = errors.New("PostgreSQL server binaries not found at " + postgresGlob + ": apt-get install postgresql")

// postgresServer is a private PostgreSQL cluster in a temp dir, on a free
// loopback port, run as an unprivileged user: initdb and postgres refuse
// to run as root.
type postgresServer struct {
	// addr is host:port, with trust authentication for pgUser.
	addr string
	dir  string
	proc *process
}

// postgresBin returns the bin directory of the newest PostgreSQL installed.
func postgresBin() (string, error) {
	found, _ := filepath.Glob(postgresGlob)
	if len(found) == 0 {
		return "", errNoPostgres
	}
	slices.SortFunc(found, func(a, b string) int { return majorOf(a) - majorOf(b) })
	return filepath.Dir(found[len(found)-1]), nil
}

// majorOf is the major version in a path /usr/lib/postgresql/<major>/bin/initdb.
func majorOf(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

// startPostgres makes a cluster with initdb and starts postgres on it:
// fsync off (nothing here must survive the machine), enough connections
// for a few Temporal servers, its socket in its own directory. It returns
// once the server accepts connections.
func startPostgres(bin string) (_ *postgresServer, err error) {
	cred, err := unprivileged()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kiln-cluster-pg-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", pgUser, "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.Dir = dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb as uid %d: %w\n%s", cred.Uid, err, out)
	}
	ports, err := devserver.FreePorts("127.0.0.1", 1)
	if err != nil {
		return nil, err
	}
	s := &postgresServer{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])), dir: dir}
	logPath := filepath.Join(dir, "postgres.log")
	s.proc, err = startProcessAs(cred, "postgres", logPath, nil, filepath.Join(bin, "postgres"), "-D", data,
		"-p", strconv.Itoa(ports[0]), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=400", "-c", "shared_buffers=64MB")
	if err != nil {
		return nil, err
	}
	if err := s.proc.waitOutput("database system is ready to accept connections", 60*time.Second); err != nil {
		_ = s.proc.kill()
		return nil, err
	}
	return s, nil
}

// unprivileged is the user PostgreSQL runs as: Debian's postgres, which
// the package creates, or else nobody.
func unprivileged() (*syscall.Credential, error) {
	var errs []error
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("user %s: %w", name, err)
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, fmt.Errorf("no unprivileged user to run PostgreSQL as: %w", errors.Join(errs...))
}

// stop shuts the server down fast (SIGINT) and removes its directory.
func (s *postgresServer) stop() {
	s.proc.stop(syscall.SIGINT, 20*time.Second)
	os.RemoveAll(s.dir)
}
