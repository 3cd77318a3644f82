//go:generate go tool packer-sdc mapstructure-to-hcl2 -type Config,DatasourceOutput

// Package ami is the kiln-ami data source: the newest AMI of a kiln pipeline
// and ref that passed kiln's test, the way hcp-packer-artifact gives the
// artifact a channel points at.
package ami

import (
	"context"
	"fmt"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/packer-plugin-sdk/common"
	"github.com/hashicorp/packer-plugin-sdk/hcl2helper"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/zclconf/go-cty/cty"
)

// Config is the body of a data "kiln-ami" block.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`
	// The kiln pipeline that baked the AMI (its kiln:pipeline tag).
	Pipeline string `mapstructure:"pipeline" required:"true"`
	// The git ref the AMI was baked from: a branch name such as "main", or a
	// full ref such as "refs/heads/main" or "refs/tags/v1.2.0". A branch name
	// matches its refs/heads/ ref and the other way round.
	Ref string `mapstructure:"ref" required:"true"`
	// The region to look in.
	Region string `mapstructure:"region" required:"true"`
	// A full commit SHA: the newest passed AMI baked from that commit,
	// instead of from any commit of the ref.
	Commit string `mapstructure:"commit" required:"false"`
	// A role to assume to look in another account, such as the one kiln's
	// distribution stage shares or copies AMIs to.
	AccountRoleARN string `mapstructure:"account_role_arn" required:"false"`
	// The owners of the AMIs to consider. Defaults to ["self"]: the account
	// of the credentials, or of account_role_arn when it is set.
	Owners []string `mapstructure:"owners" required:"false"`
	// An EC2 and STS endpoint URL to use instead of AWS's, for tests against
	// a local AWS such as moto. AWS_ENDPOINT_URL is honoured as well.
	Endpoint string `mapstructure:"endpoint" required:"false"`
}

// DatasourceOutput is what data.kiln-ami.<name> gives a template.
type DatasourceOutput struct {
	// The AMI ID.
	ID string `mapstructure:"id"`
	// The commit the AMI was baked from (kiln:commit).
	Commit string `mapstructure:"commit"`
	// The kiln run (workflow ID) that baked it (kiln:run).
	Run string `mapstructure:"run"`
	// The ref the AMI was baked from, as kiln tagged it (kiln:ref).
	Ref string `mapstructure:"ref"`
	// The pipeline that baked it (kiln:pipeline).
	Pipeline string `mapstructure:"pipeline"`
	// The region the AMI is in.
	Region string `mapstructure:"region"`
	// When EC2 created the AMI, in RFC 3339.
	CreationDate string `mapstructure:"creation_date"`
	// All the AMI's tags.
	Tags map[string]string `mapstructure:"tags"`
}

// Datasource looks up the AMI. Packer calls Configure, then Execute.
type Datasource struct {
	config Config
}

// ConfigSpec is the HCL2 layout of the data source's block.
func (d *Datasource) ConfigSpec() hcldec.ObjectSpec {
	return d.config.FlatMapstructure().HCL2Spec()
}

// OutputSpec is the HCL2 layout of the data source's outputs.
func (d *Datasource) OutputSpec() hcldec.ObjectSpec {
	return (&DatasourceOutput{}).FlatMapstructure().HCL2Spec()
}

// Configure decodes and checks the block.
func (d *Datasource) Configure(raws ...interface{}) error {
	if err := config.Decode(&d.config, nil, raws...); err != nil {
		return err
	}
	var errs *packersdk.MultiError
	for _, f := range []struct{ name, value string }{
		{"pipeline", d.config.Pipeline},
		{"ref", d.config.Ref},
		{"region", d.config.Region},
	} {
		if f.value == "" {
			errs = packersdk.MultiErrorAppend(errs, fmt.Errorf("kiln-ami: `%s` must be set", f.name))
		}
	}
	if len(d.config.Owners) == 0 {
		d.config.Owners = []string{"self"}
	}
	if errs != nil && len(errs.Errors) > 0 {
		return errs
	}
	return nil
}

// Execute finds the AMI and returns its outputs.
func (d *Datasource) Execute() (cty.Value, error) {
	ctx := context.Background()
	null := cty.NullVal(cty.EmptyObject)
	c, err := newEC2Client(ctx, d.config)
	if err != nil {
		return null, err
	}
	out, err := Find(ctx, c, Query{
		Pipeline: d.config.Pipeline,
		Ref:      d.config.Ref,
		Region:   d.config.Region,
		Commit:   d.config.Commit,
		Owners:   d.config.Owners,
	})
	if err != nil {
		return null, err
	}
	return hcl2helper.HCL2ValueFromConfig(out, d.OutputSpec()), nil
}
