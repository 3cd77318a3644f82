package oci

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/kiln-ci/kiln/test/motoserver"
)

// TestECRAuthAgainstMoto: the login kiln does for an ECR repository, against
// moto's GetAuthorizationToken: the token decodes to AWS and the password.
func TestECRAuthAgainstMoto(t *testing.T) {
	moto := motoserver.Start(t)
	c := ecr.NewFromConfig(aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String(moto.URL),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})
	auth, err := ECRAuth(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if auth.Username != "AWS" || auth.Password != "123456789012-auth-token" {
		t.Fatalf("ECRAuth = %q/%q, want AWS and moto's token for the default account", auth.Username, auth.Password)
	}
}
