package activities

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/kiln-ci/kiln/internal/awsx"
	"github.com/kiln-ci/kiln/internal/buildspec"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/secrets"
)

// secretSource reads declared secrets on the worker; the AWS resolver is
// made on first use, so stages declaring none make no AWS config. A
// reference a stage declares and its buildspec names too is read once.
type secretSource struct {
	resolver *secrets.Resolver
	read     map[string][]byte // by store and reference
}

// resolveSecrets reads a stage's declared secrets (field names them in
// kiln.yaml, e.g. "stages.build.secrets") and its buildspec's
// env.secrets-manager and env.parameter-store entries, on the worker. The
// buildspec comes from the repository, so it may read only references the
// stage declares too: the worker's AWS identity could read far more. A
// buildspec entry wins over a declared secret of the same name, as a
// buildspec's variables win over a CodeBuild project's. A secret that
// cannot be read is a permanent ErrSecretUnavailable naming the variable
// and where it is read; throttling and network failures are retried.
func resolveSecrets(ctx context.Context, field string, declared map[string]config.DeclaredSecret, env buildspec.Env) ([]buildspec.Secret, error) {
	var src secretSource
	var out []buildspec.Secret
	set := func(name, value string) {
		out = slices.DeleteFunc(out, func(s buildspec.Secret) bool { return s.Name == name })
		out = append(out, buildspec.Secret{Name: name, Value: value})
	}
	for _, name := range slices.Sorted(maps.Keys(declared)) {
		d := declared[name]
		var v []byte
		var err error
		switch {
		case d.SecretsManager != "":
			v, err = src.get(ctx, secrets.StoreSecretsManager, d.SecretsManager)
		case d.ParameterStore != "":
			v, err = src.get(ctx, secrets.StoreParameterStore, d.ParameterStore)
		default:
			if v, err = d.Ref().Resolve(); err != nil {
				return nil, permanent(ErrSecretUnavailable, "%s.%s: %v", field, name, err)
			}
		}
		if err != nil {
			return nil, secretError(field+"."+name, err)
		}
		set(name, string(v))
	}
	for _, list := range []struct {
		store secrets.Store
		vars  []buildspec.SecretVar
	}{{secrets.StoreParameterStore, env.ParameterStore}, {secrets.StoreSecretsManager, env.SecretsManager}} {
		for _, sv := range list.vars {
			where := "buildspec env." + string(list.store) + "." + sv.Name
			if !declares(declared, list.store, sv.Ref) {
				return nil, permanent(ErrSecretUnavailable, "%s reads %s %q, which %s does not declare: a repository's "+
					"buildspec may read only the secrets its pipeline declares in kiln.yaml, as the worker's AWS identity "+
					"could read any other (add it there, under any name)", where, list.store, sv.Ref, field)
			}
			v, err := src.get(ctx, list.store, sv.Ref)
			if err != nil {
				return nil, secretError(where, err)
			}
			set(sv.Name, string(v))
		}
	}
	return out, nil
}

// get reads one reference from AWS, in the worker's default region for a
// name and the ARN's region for an ARN.
func (s *secretSource) get(ctx context.Context, store secrets.Store, ref string) ([]byte, error) {
	key := string(store) + "\x00" + ref
	if v, ok := s.read[key]; ok {
		return v, nil
	}
	if s.resolver == nil {
		cfg, err := awsx.Config(ctx, "")
		if err != nil {
			return nil, err
		}
		s.resolver, s.read = secrets.New(cfg), map[string][]byte{}
	}
	var v []byte
	var err error
	if store == secrets.StoreParameterStore {
		v, err = s.resolver.ParameterStore(ctx, ref)
	} else {
		v, err = s.resolver.SecretsManager(ctx, ref)
	}
	if err == nil {
		s.read[key] = v
	}
	return v, err
}

// secretError words a failure to read the secret at where. A *secrets.Error
// is permanent; it is checked first, as it unwraps to the AWS error that
// awsx.Classify would judge on its own terms.
func secretError(where string, err error) error {
	var se *secrets.Error
	if errors.As(err, &se) {
		return permanent(ErrSecretUnavailable, "%s: %v", where, se)
	}
	return awsx.Classify(err, "read secret "+where)
}

// secretMap is secrets by name, as BuildKit's session serves them.
func secretMap(list []buildspec.Secret) map[string][]byte {
	out := make(map[string][]byte, len(list))
	for _, s := range list {
		out[s.Name] = []byte(s.Value)
	}
	return out
}

// declares reports whether the stage declares the reference ref of store,
// under any name.
func declares(declared map[string]config.DeclaredSecret, store secrets.Store, ref string) bool {
	for _, d := range declared {
		if (store == secrets.StoreSecretsManager && d.SecretsManager == ref) ||
			(store == secrets.StoreParameterStore && d.ParameterStore == ref) {
			return true
		}
	}
	return false
}
