package ami

import (
	"context"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/kiln-ci/kiln/internal/awsx"
)

// SSMAPI is the part of SSM the distribute stage uses: pointing a target's
// parameter at its AMI. Like EC2API, it is the whole list of SSM calls the
// iam-policy tests hold the generated policies to.
type SSMAPI interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, opts ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
	PutParameter(ctx context.Context, in *ssm.PutParameterInput, opts ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
}

// ImageDataType is the SSM data type of an AMI ID: SSM checks the value
// names an AMI the account may use, and EC2 resolves resolve:ssm: to it.
const ImageDataType = "aws:ec2:image"

// Parameter is an SSM parameter holding an AMI.
type Parameter struct {
	Name    string
	Version int64
	// Changed says this call wrote the version; false means the parameter
	// held the AMI already.
	Changed bool
}

// PutParameter points the SSM parameter name at ami: a String of data type
// aws:ec2:image, created or overwritten. A parameter already holding the
// AMI is left alone, so a retry makes no second version. AWS cannot turn a
// parameter of another data type into an aws:ec2:image one; such a
// parameter is a permanent failure (ErrRefUnusable). SSM validates the AMI
// after PutParameter returns; a parameter it refuses keeps its old value.
func PutParameter(ctx context.Context, c SSMAPI, name, ami, what string) (Parameter, error) {
	got, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	switch {
	case hasErrorCode(err, "ParameterNotFound"):
	case err != nil:
		return Parameter{}, awsx.Classify(err, fmt.Sprintf("%s: read the SSM parameter %s", what, name))
	case got.Parameter != nil:
		p := got.Parameter
		if dt := aws.ToString(p.DataType); dt != "" && dt != ImageDataType {
			return Parameter{}, fail(ErrRefUnusable, "%s: the SSM parameter %s has data type %s, and AWS cannot change "+
				"a parameter to %s; delete it (kiln creates it) or name another parameter", what, name, dt, ImageDataType)
		}
		if aws.ToString(p.Value) == ami {
			return Parameter{Name: name, Version: p.Version}, nil
		}
	}
	out, err := c.PutParameter(ctx, &ssm.PutParameterInput{
		Name:      aws.String(name),
		Value:     aws.String(ami),
		Type:      ssmtypes.ParameterTypeString,
		DataType:  aws.String(ImageDataType),
		Overwrite: aws.Bool(true),
	})
	if err != nil {
		return Parameter{}, awsx.Classify(err, fmt.Sprintf("%s: set the SSM parameter %s to %s", what, name, ami))
	}
	return Parameter{Name: name, Version: out.Version, Changed: true}, nil
}

// LaunchTemplateRequest is a new version of a launch template, for the
// region of the client that makes it.
type LaunchTemplateRequest struct {
	// Name names the template, which must exist.
	Name string
	// AMI is the image the new version launches.
	AMI string
	// SetDefault makes the version the template's default.
	SetDefault bool
	// RunID is the run the version is made for, named in its description.
	RunID string
	// Token is CreateLaunchTemplateVersion's ClientToken: the same update
	// always sends the same.
	Token string
}

// LaunchTemplate is a launch template version that launches an AMI.
type LaunchTemplate struct {
	ID, Name string
	Version  int64
	// Default says the version is the template's default.
	Default bool
	// Created says this call made the version; false means the latest
	// version launched the AMI already.
	Created bool
}

// UpdateLaunchTemplate gives the template a version that launches r.AMI:
// the latest version with only the image changed (SourceVersion $Latest),
// made the default when r.SetDefault. It is idempotent: when the latest
// version launches the AMI already it is reused (a retry, or a rerun with
// the same AMI, makes no second version), and the ClientToken covers a
// version made by an attempt that did not learn of it. A default already
// right is not set again. A missing template is permanent, classified.
func UpdateLaunchTemplate(ctx context.Context, c EC2API, r LaunchTemplateRequest, what string) (LaunchTemplate, error) {
	what = fmt.Sprintf("%s: launch template %s", what, r.Name)
	out, err := c.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{
		LaunchTemplateName: aws.String(r.Name),
		Versions:           []string{"$Latest", "$Default"},
	})
	if err != nil {
		return LaunchTemplate{}, awsx.Classify(err, what+": read its latest and default versions")
	}
	var latest *ec2types.LaunchTemplateVersion
	var def int64
	for i, v := range out.LaunchTemplateVersions {
		if latest == nil || aws.ToInt64(v.VersionNumber) > aws.ToInt64(latest.VersionNumber) {
			latest = &out.LaunchTemplateVersions[i]
		}
		if aws.ToBool(v.DefaultVersion) {
			def = aws.ToInt64(v.VersionNumber)
		}
	}
	if latest == nil {
		return LaunchTemplate{}, fmt.Errorf("%s: EC2 returned no latest version", what)
	}
	res := LaunchTemplate{ID: aws.ToString(latest.LaunchTemplateId), Name: r.Name,
		Version: aws.ToInt64(latest.VersionNumber)}
	if templateImage(latest) != r.AMI {
		made, err := c.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{
			LaunchTemplateId:   aws.String(res.ID),
			SourceVersion:      aws.String("$Latest"),
			LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(r.AMI)},
			VersionDescription: aws.String(fmt.Sprintf("%s by kiln run %s", r.AMI, r.RunID)),
			ClientToken:        aws.String(r.Token),
		})
		if err != nil {
			return LaunchTemplate{}, awsx.Classify(err, fmt.Sprintf("%s: add a version launching %s", what, r.AMI))
		}
		res.Version, res.Created = aws.ToInt64(made.LaunchTemplateVersion.VersionNumber), true
	}
	res.Default = def == res.Version
	if r.SetDefault && !res.Default {
		_, err := c.ModifyLaunchTemplate(ctx, &ec2.ModifyLaunchTemplateInput{
			LaunchTemplateId: aws.String(res.ID),
			DefaultVersion:   aws.String(strconv.FormatInt(res.Version, 10)),
		})
		if err != nil {
			return res, awsx.Classify(err, fmt.Sprintf("%s: make version %d the default", what, res.Version))
		}
		res.Default = true
	}
	return res, nil
}

// templateImage is the AMI a launch template version launches.
func templateImage(v *ec2types.LaunchTemplateVersion) string {
	if v.LaunchTemplateData == nil {
		return ""
	}
	return aws.ToString(v.LaunchTemplateData.ImageId)
}
