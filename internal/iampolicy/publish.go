package iampolicy

import (
	"strings"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/oci"
)

// ECR actions: logging in, and pushing (and reading a base image) in a
// repository. ListImages lists its tags, so X.Y and X only move forward.
var (
	ecrLogin = []string{"ecr:GetAuthorizationToken"}
	ecrPush  = []string{"ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:CompleteLayerUpload",
		"ecr:GetDownloadUrlForLayer", "ecr:InitiateLayerUpload", "ecr:ListImages", "ecr:PutImage", "ecr:UploadLayerPart"}
)

// publishStatements are what the builder needs for the publish stage and
// notifications: PutObject under the templates' bucket, pushing to the ECR
// repositories it names, sending mail and publishing to the topic.
func publishStatements(p config.Pipeline) []Statement {
	var st []Statement
	if pub := p.Stages.Publish; pub != nil {
		if cf := pub.CloudFormation; cf != nil {
			st = append(st, Statement{Sid: "KilnUploadsTemplatesUnderTheBucket",
				// GetObject: HeadObject reads which commit published a template.
				Action:   []string{"s3:GetObject", "s3:PutObject"},
				Resource: []string{"arn:aws:s3:::" + cf.Bucket + "/*"}})
		}
		var repos []string
		for _, img := range pub.Images {
			if arn := ecrRepositoryARN(img.Name); arn != "" {
				repos = append(repos, arn)
			}
		}
		if len(repos) > 0 {
			st = append(st,
				Statement{Sid: "KilnLogsInToECRAnyResourceAsTheTokenIsPerAccount", Action: ecrLogin, Resource: anyResource},
				Statement{Sid: "KilnPushesExactlyItsECRRepositories", Action: ecrPush, Resource: set(repos)})
		}
	}
	if n := p.Notify; n != nil {
		if e := n.Email; e != nil && e.Via != "smtp" {
			st = append(st, Statement{Sid: "KilnMailsThroughSESAnyIdentityTheFromAddressMustBeVerified",
				Action: []string{"ses:SendEmail"}, Resource: anyResource})
		}
		if n.SNS != nil {
			st = append(st, Statement{Sid: "KilnPublishesToExactlyItsTopic", Action: []string{"sns:Publish"},
				Resource: []string{n.SNS.TopicARN}})
		}
	}
	return st
}

// ecrRepositoryARN is the ARN of an ECR repository image name, or "" for
// another registry.
func ecrRepositoryARN(image string) string {
	region, ok := oci.ECRRegion(image)
	if !ok {
		return ""
	}
	host, repo, _ := strings.Cut(image, "/")
	account, _, _ := strings.Cut(host, ".")
	return "arn:aws:ecr:" + region + ":" + account + ":repository/" + repo
}
