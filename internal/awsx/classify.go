package awsx

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/smithy-go"
	"go.temporal.io/sdk/temporal"
)

// Stable ApplicationError types for AWS failures that retrying cannot fix.
// Workflows match on them; retry policies list them as non-retryable.
const (
	// TypeAccessDenied: the credentials are invalid or lack a permission.
	TypeAccessDenied = "AWSAccessDenied"
	// TypeNotFound: an AMI, snapshot, instance, subnet, group or key is missing.
	TypeNotFound = "AWSNotFound"
	// TypeKMSKeyUnusable: a KMS key exists but is disabled, pending deletion
	// or not usable by the caller.
	TypeKMSKeyUnusable = "AWSKMSKeyUnusable"
	// TypeInvalidRequest: AWS rejected the request's parameters.
	TypeInvalidRequest = "AWSInvalidRequest"
)

// PermanentErrorTypes are the types Classify makes non-retryable, for
// temporal.RetryPolicy.NonRetryableErrorTypes.
var PermanentErrorTypes = []string{TypeAccessDenied, TypeNotFound, TypeKMSKeyUnusable, TypeInvalidRequest}

// permanentCodes maps AWS error codes to the permanent type they mean.
// ExpiredToken and RequestExpired are deliberately absent: the credential
// cache fetches fresh credentials and a retry succeeds.
var permanentCodes = map[string]string{
	"AccessDenied":          TypeAccessDenied,
	"AccessDeniedException": TypeAccessDenied,
	"UnauthorizedOperation": TypeAccessDenied,
	"AuthFailure":           TypeAccessDenied,
	"InvalidClientTokenId":  TypeAccessDenied,
	"SignatureDoesNotMatch": TypeAccessDenied,
	"OptInRequired":         TypeAccessDenied,

	"InvalidAMIID.NotFound":      TypeNotFound,
	"InvalidAMIID.Malformed":     TypeNotFound,
	"InvalidAMIID.Unavailable":   TypeNotFound,
	"InvalidSnapshot.NotFound":   TypeNotFound,
	"InvalidInstanceID.NotFound": TypeNotFound,
	"InvalidSubnetID.NotFound":   TypeNotFound,
	"InvalidGroup.NotFound":      TypeNotFound,
	"InvalidKeyPair.NotFound":    TypeNotFound,
	"NotFoundException":          TypeNotFound, // KMS: no such key or alias

	// A target's launch template or SSM parameter.
	"InvalidLaunchTemplateName.NotFoundException":  TypeNotFound,
	"InvalidLaunchTemplateId.NotFound":             TypeNotFound,
	"InvalidLaunchTemplateId.VersionNotFound":      TypeNotFound,
	"InvalidLaunchTemplateName.MalformedException": TypeInvalidRequest,
	"InvalidLaunchTemplateId.Malformed":            TypeInvalidRequest,
	"IdempotentParameterMismatch":                  TypeInvalidRequest,
	"HierarchyTypeMismatchException":               TypeInvalidRequest,
	"HierarchyLevelLimitExceededException":         TypeInvalidRequest,
	"UnsupportedParameterType":                     TypeInvalidRequest,
	"ParameterPatternMismatchException":            TypeInvalidRequest,
	"ParameterLimitExceeded":                       TypeInvalidRequest,
	"ParameterMaxVersionLimitExceeded":             TypeInvalidRequest,

	"DisabledException":            TypeKMSKeyUnusable,
	"KMSInvalidStateException":     TypeKMSKeyUnusable,
	"InvalidKMSKey.InvalidState":   TypeKMSKeyUnusable,
	"KMS.DisabledException":        TypeKMSKeyUnusable,
	"KMS.NotFoundException":        TypeKMSKeyUnusable,
	"KMS.KMSInvalidStateException": TypeKMSKeyUnusable,
	"KMS.InvalidStateException":    TypeKMSKeyUnusable,
	"KMS.AccessDeniedException":    TypeKMSKeyUnusable,
	"IncorrectKeyException":        TypeKMSKeyUnusable,

	"InvalidParameterValue":       TypeInvalidRequest,
	"InvalidParameterCombination": TypeInvalidRequest,
	"InvalidParameter":            TypeInvalidRequest,
	"MissingParameter":            TypeInvalidRequest,
	"UnknownParameter":            TypeInvalidRequest,
	"ValidationError":             TypeInvalidRequest,
	"ValidationException":         TypeInvalidRequest,
}

// Classify turns an error from an AWS call into what a Temporal activity
// should return. what says what kiln was doing, in words a person reads in
// the UI, e.g. "copy ami-123 to eu-west-1 in 222222222222". Permanent AWS
// errors become non-retryable ApplicationErrors of one of the Type* types,
// with a hint on what to fix; everything else (throttling, 5xx, resets,
// timeouts) stays retryable. Classify(nil, ...) is nil.
func Classify(err error, what string) error {
	if err == nil {
		return nil
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return err
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return fmt.Errorf("%s: %w", what, err)
	}
	errType, ok := permanentCodes[apiErr.ErrorCode()]
	if !ok {
		return fmt.Errorf("%s: %w", what, err)
	}
	msg := fmt.Sprintf("%s: %s (%s): %s; %s", what, describe(errType), apiErr.ErrorCode(),
		apiErr.ErrorMessage(), hint(errType, permission(err)))
	return temporal.NewNonRetryableApplicationError(msg, errType, err)
}

// describe names the error type for people.
func describe(errType string) string {
	switch errType {
	case TypeAccessDenied:
		return "access denied"
	case TypeNotFound:
		return "not found"
	case TypeKMSKeyUnusable:
		return "KMS key unusable"
	default:
		return "invalid request"
	}
}

// hint says what a person should check. perm is the IAM action that
// failed ("ec2:CopyImage"), or "" when unknown.
func hint(errType, perm string) string {
	switch errType {
	case TypeAccessDenied:
		if perm == "" {
			return "check the credentials and the role's permissions"
		}
		return "check the role's " + perm + " permission"
	case TypeNotFound:
		return "check that it exists in that account and region and is shared with the caller"
	case TypeKMSKeyUnusable:
		return "check that the KMS key is enabled and its key policy allows the role " +
			"(kms:CreateGrant, kms:Decrypt, kms:GenerateDataKey*, kms:ReEncrypt*)"
	default:
		if perm == "" {
			return "check the request's parameters in kiln.yaml"
		}
		return "check the " + perm + " parameters in kiln.yaml"
	}
}

// permission derives the IAM action from the SDK's operation error, e.g.
// service "EC2" and operation "CopyImage" give "ec2:CopyImage". When one call
// failed inside another, such as the AssumeRole behind a role's first call,
// the innermost operation is the one that was refused.
func permission(err error) string {
	var op, last *smithy.OperationError
	for e := err; errors.As(e, &op); e = op.Err {
		last = op
	}
	if last == nil {
		return ""
	}
	return strings.ToLower(last.Service()) + ":" + last.Operation()
}
