package awsproxy

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Request is one AWS API call as the proxy saw it: who made it, where, what
// it asked for and how it was answered.
type Request struct {
	// Time is when the proxy received the request.
	Time time.Time
	// Service is the SigV4 signing name, e.g. "ec2", "sts", "kms".
	Service string
	// Region is the SigV4 signing region, e.g. "eu-west-1".
	Region string
	// AccessKeyID identifies the caller; with moto it also picks the account.
	AccessKeyID string
	// Account is the AWS account moto acts in for this caller: the role's
	// account for keys from an AssumeRole the proxy forwarded, else moto's
	// default (see Proxy.AccountOf).
	Account string
	// Action is the query API Action (EC2, STS) or the operation named by
	// X-Amz-Target (JSON APIs such as KMS), e.g. "CopyImage" or "Encrypt".
	Action string
	// Params are the form parameters of a query API call; empty for JSON APIs.
	Params url.Values
	// Body is the raw request body, for JSON APIs whose input is not a form.
	Body []byte
	// Status is the HTTP status sent back; 0 when the connection was reset.
	Status int
	// Fault is the fault injected instead of forwarding, or None.
	Fault Kind
}

// parseRequest describes r, whose body has already been read into body.
func parseRequest(r *http.Request, body []byte) Request {
	req := Request{Time: time.Now(), Body: body}
	req.AccessKeyID, req.Region, req.Service = credentialScope(r.Header.Get("Authorization"))
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		req.Action = target[strings.LastIndex(target, ".")+1:]
		return req
	}
	params, err := url.ParseQuery(string(body))
	if err == nil {
		req.Params = params
		req.Action = params.Get("Action")
	}
	if req.Action == "" {
		req.Action = r.URL.Query().Get("Action")
	}
	return req
}

// credentialScope extracts key ID, region and service from a SigV4
// Authorization header:
//
//	AWS4-HMAC-SHA256 Credential=AKID/20240101/REGION/SERVICE/aws4_request, ...
func credentialScope(auth string) (keyID, region, service string) {
	_, rest, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return "", "", ""
	}
	rest, _, _ = strings.Cut(rest, ",")
	parts := strings.Split(strings.TrimSpace(rest), "/")
	if len(parts) < 5 {
		return "", "", ""
	}
	return parts[0], parts[2], parts[3]
}

// isJSON reports whether the call uses an AWS JSON protocol, which decides
// the shape of injected error bodies.
func (r Request) isJSON() bool {
	return r.Params == nil
}
