package awsproxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
)

// DefaultAccount is the account moto acts in for any access key it did not
// issue through AssumeRole (moto's DEFAULT_ACCOUNT_ID).
const DefaultAccount = "123456789012"

// motoAccountHeader makes moto act in the named account, whatever the key.
const motoAccountHeader = "x-moto-account-id"

var accessKeyRe = regexp.MustCompile(`<AccessKeyId>([^<]+)</AccessKeyId>`)

// AccountOf returns the account moto acts in for accessKeyID: the role's
// account if the key came from an AssumeRole the proxy forwarded, else
// DefaultAccount.
func (p *Proxy) AccountOf(accessKeyID string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if account, ok := p.accounts[accessKeyID]; ok {
		return account
	}
	return DefaultAccount
}

// accountFor is the account moto will act in for r, described by req.
func (p *Proxy) accountFor(r *http.Request, req Request) string {
	if account := r.Header.Get(motoAccountHeader); account != "" {
		return account
	}
	return p.AccountOf(req.AccessKeyID)
}

// learnAccount notes the account of the key a successful AssumeRole issued:
// the one in the role's ARN, arn:aws:iam::ACCOUNT:role/NAME.
func (p *Proxy) learnAccount(req Request, body []byte) []byte {
	arn := strings.Split(req.Params.Get("RoleArn"), ":")
	key := accessKeyRe.FindSubmatch(body)
	if len(arn) < 6 || arn[4] == "" || key == nil {
		return body
	}
	p.mu.Lock()
	p.accounts[string(key[1])] = arn[4]
	p.mu.Unlock()
	return body
}

// imageRef names an AMI in one account and region.
type imageRef struct{ account, region, image string }

// sharing is what ShareAcrossAccounts keeps: launch permissions granted and
// the stand-in images made for them.
type sharing struct {
	// mu is held while a mirror is registered, so each is registered once.
	mu sync.Mutex
	// grants maps an owner's image to the accounts allowed to launch it.
	grants map[imageRef]map[string]bool
	// mirrors maps a grantee's account, and the source image and region it
	// copies from, to the stand-in registered there.
	mirrors map[imageRef]string
}

// ShareAcrossAccounts lets an account copy an AMI shared with it by another
// account, which moto cannot do: moto's CopyImage looks for the source
// image only in the caller's own account. Once an owner grants an account
// launch permission through ModifyImageAttribute, that account's CopyImage
// of the image is sent to moto with SourceImageId pointing at a mirror:
// an image registered, on first use, in the grantee's account and the
// source region. Without a grant the copy fails with InvalidAMIID.NotFound,
// as on AWS. Mirrors are left out of DescribeImages answers.
func (p *Proxy) ShareAcrossAccounts() {
	s := &sharing{grants: map[imageRef]map[string]bool{}, mirrors: map[imageRef]string{}}
	p.mu.Lock()
	p.sharing = s
	p.mu.Unlock()
	p.Rewrite("ModifyImageAttribute", s.recordGrant)
	p.Rewrite("DescribeImages", s.hideMirrors)
}

// recordGrant notes the launch permissions a successful ModifyImageAttribute
// added or removed for account IDs.
func (s *sharing) recordGrant(req Request, body []byte) []byte {
	ref := imageRef{req.Account, req.Region, req.Params.Get("ImageId")}
	add, remove := launchUsers(req.Params)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.grants[ref] == nil {
		s.grants[ref] = map[string]bool{}
	}
	for _, account := range add {
		s.grants[ref][account] = true
	}
	for _, account := range remove {
		delete(s.grants[ref], account)
	}
	return body
}

// launchUsers returns the account IDs a ModifyImageAttribute call adds to
// and removes from launch permission, in either of EC2's two forms:
// LaunchPermission.Add.N.UserId, or OperationType=add with UserIds.N.
func launchUsers(params url.Values) (add, remove []string) {
	for key, values := range params {
		switch {
		case strings.HasPrefix(key, "LaunchPermission.Add.") && strings.HasSuffix(key, ".UserId"):
			add = append(add, values...)
		case strings.HasPrefix(key, "LaunchPermission.Remove.") && strings.HasSuffix(key, ".UserId"):
			remove = append(remove, values...)
		case strings.HasPrefix(key, "UserIds.") && params.Get("OperationType") == "add":
			add = append(add, values...)
		case strings.HasPrefix(key, "UserIds.") && params.Get("OperationType") == "remove":
			remove = append(remove, values...)
		}
	}
	return add, remove
}

// hideMirrors drops stand-in images from a DescribeImages answer: on AWS
// the grantee's account holds no such image.
func (s *sharing) hideMirrors(_ Request, body []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.mirrors) == 0 {
		return body
	}
	return rewriteItems(body, func(item []byte) []byte {
		m := imageIDRe.FindSubmatch(item)
		for _, mirror := range s.mirrors {
			if m != nil && string(m[1]) == mirror {
				return nil
			}
		}
		return item
	})
}

// outgoingBody is the body to send the target for req: the one the client
// sent, unless req copies an image shared with the caller's account.
func (p *Proxy) outgoingBody(ctx context.Context, req Request) ([]byte, error) {
	p.mu.Lock()
	s := p.sharing
	p.mu.Unlock()
	if s == nil || req.Service != "ec2" || req.Action != "CopyImage" {
		return req.Body, nil
	}
	src := imageRef{req.Account, req.Params.Get("SourceRegion"), req.Params.Get("SourceImageId")}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.granted(src) {
		return req.Body, nil
	}
	mirror, ok := s.mirrors[src]
	if !ok {
		var err error
		if mirror, err = p.registerMirror(ctx, src); err != nil {
			return nil, fmt.Errorf("mirror %s for account %s: %w", src.image, src.account, err)
		}
		s.mirrors[src] = mirror
	}
	params, _ := url.ParseQuery(string(req.Body)) // parsed once already
	params.Set("SourceImageId", mirror)
	return []byte(params.Encode()), nil
}

// granted reports whether another account granted src.account launch
// permission on src.image in src.region. s.mu must be held.
func (s *sharing) granted(src imageRef) bool {
	for ref, accounts := range s.grants {
		if ref.account != src.account && ref.region == src.region && ref.image == src.image && accounts[src.account] {
			return true
		}
	}
	return false
}

// registerMirror registers a stand-in for ref.image in ref.account and
// ref.region and returns its ID. moto takes the account from its header and
// the region from the credential scope, and checks no signature.
func (p *Proxy) registerMirror(ctx context.Context, ref imageRef) (string, error) {
	form := url.Values{
		"Action":      {"RegisterImage"},
		"Version":     {"2016-11-15"},
		"Name":        {"awsproxy-mirror-" + ref.image},
		"Description": {"Stand-in for shared " + ref.image},
	}
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, p.target.JoinPath("/").String(),
		strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	out.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	out.Header.Set(motoAccountHeader, ref.account)
	out.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=awsproxy/20240101/"+ref.region+
		"/ec2/aws4_request, SignedHeaders=host, Signature=unsigned")
	resp, err := p.client.Do(out)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	m := imageIDRe.FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		return "", fmt.Errorf("RegisterImage: HTTP %d: %s", resp.StatusCode, body)
	}
	return string(m[1]), nil
}
