// Package iampolicy derives least-privilege IAM policy documents from a
// pipeline's configuration: one for the builder (the worker's credentials)
// and, for each target account kiln acts in through a role (copy-mode
// targets, and share-mode targets that update a parameter or launch
// template), that role's permission and trust policies. It grants only the AWS actions kiln and Packer's
// amazon-ebs builder call, scoped to the regions, images, keys and roles the
// pipeline names. It is pure: no AWS calls, deterministic output.
package iampolicy

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/kiln-ci/kiln/internal/config"
)

// Version is the policy language version every document declares.
const Version = "2012-10-17"

// PlaceholderBuilderARN stands for the builder's principal until the operator
// names it; IAM rejects it, so a forgotten placeholder fails loudly.
const PlaceholderBuilderARN = "arn:aws:iam::<ACCOUNT>:role/kiln-builder"

// Document is an IAM policy document.
type Document struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement of a Document. Sids are alphanumeric, as IAM
// requires, and say why the statement exists.
type Statement struct {
	Sid       string     `json:"Sid"`
	Effect    string     `json:"Effect"`
	Principal *Principal `json:"Principal,omitempty"`
	Action    []string   `json:"Action"`
	Resource  []string   `json:"Resource,omitempty"`
	Condition Condition  `json:"Condition,omitempty"`
}

// Principal is a trust policy's principal.
type Principal struct {
	AWS string `json:"AWS"`
}

// Condition maps a condition operator to keys and their values.
type Condition map[string]map[string][]string

// Policies is everything `kiln iam-policy` prints for one pipeline.
type Policies struct {
	Pipeline string `json:"pipeline"`
	// Builder is the policy of the credentials the kiln worker runs with.
	Builder Document `json:"builder"`
	// Targets holds, by account ID, the role policies of copy-mode targets
	// reached through a role.
	Targets map[string]TargetRole `json:"targets,omitempty"`
	// SharedWith lists share-mode accounts, which need no role.
	SharedWith *Shared `json:"shared_with,omitempty"`
	// Notes are what the documents cannot say themselves.
	Notes []string `json:"notes,omitempty"`
}

// TargetRole is what one target account's role needs.
type TargetRole struct {
	// Roles are the role ARNs the config names for the account.
	Roles   []string `json:"roles"`
	Regions []string `json:"regions"`
	Policy  Document `json:"policy"`
	Trust   Document `json:"trust"`
}

// Shared lists share-mode accounts and their regions.
type Shared struct {
	Note     string              `json:"note"`
	Accounts map[string][]string `json:"accounts"`
}

// Options tune the documents.
type Options struct {
	// BuilderARN is the principal target roles trust; default PlaceholderBuilderARN.
	BuilderARN string
}

// Generate returns the policies pipeline p needs. A pipeline without bake,
// test or distribute stages makes no AWS calls and is an error.
func Generate(p config.Pipeline, opts Options) (*Policies, error) {
	g := &generator{p: p, builder: opts.BuilderARN, targets: map[string]*target{}}
	if g.builder == "" {
		g.builder = PlaceholderBuilderARN
	}
	if err := g.plan(); err != nil {
		return nil, fmt.Errorf("pipeline %q: %w", p.Name, err)
	}
	return g.policies(), nil
}

// WriteJSON writes the policies indented, without escaping <, > and &, so
// the placeholder reads as written.
func (p *Policies) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}

// Actions Packer's amazon-ebs builder needs, as its documentation lists them.
var packerActions = ec2("AttachVolume", "AuthorizeSecurityGroupIngress", "CopyImage", "CreateImage",
	"CreateKeyPair", "CreateSecurityGroup", "CreateSnapshot", "CreateTags", "CreateVolume", "DeleteKeyPair",
	"DeleteSecurityGroup", "DeleteSnapshot", "DeleteVolume", "DeregisterImage", "DescribeImageAttribute",
	"DescribeImages", "DescribeInstances", "DescribeInstanceStatus", "DescribeRegions",
	"DescribeSecurityGroups", "DescribeSnapshots", "DescribeSubnets", "DescribeTags", "DescribeVolumes",
	"DetachVolume", "GetPasswordData", "ModifyImageAttribute", "ModifyInstanceAttribute",
	"ModifySnapshotAttribute", "RegisterImage", "RunInstances", "StopInstances", "TerminateInstances")

// kmsUseActions are what EBS needs to encrypt a copy with a key, CreateGrant aside.
var kmsUseActions = []string{"kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"}

// copyActions make and find a copy in one account and tag it.
var copyActions = ec2("CopyImage", "CreateTags", "DescribeImages")

// generator collects what the pipeline touches, then writes the documents.
type generator struct {
	p       config.Pipeline
	builder string

	bake, test   string   // regions; "" when the stage is absent
	shareRegions []string // regions where images are shared (ModifyImageAttribute)
	ownCopies    []string // regions where the builder copies in its own account
	ownKeys      keys     // KMS keys of the builder's own copy-mode targets
	ownRefs      refs     // what the builder's own copy-mode targets update
	roles        []string // target roles the builder assumes
	targets      map[string]*target
	shared       map[string][]string
}

// target is one account reached through a role: a copy-mode target, or a
// share-mode one that updates what points at its AMI.
type target struct {
	roles, regions []string
	copyRegions    []string // regions the role copies into
	keys           keys
	refs           refs
}

func (g *generator) plan() error {
	s := g.p.Stages
	if s.Bake == nil && s.Test == nil && s.Distribute == nil && len(publishStatements(g.p)) == 0 {
		return fmt.Errorf("no bake, test, distribute or AWS publish stage, and no AWS notification: it makes no AWS calls")
	}
	if s.Bake != nil {
		g.bake = s.Bake.Region
	}
	if s.Test != nil {
		g.test = cmp.Or(s.Test.Region, g.bake)
		if g.test == "" {
			return fmt.Errorf("the test stage has no region and there is no bake region to default to")
		}
	}
	if s.Distribute == nil {
		return nil
	}
	if g.bake == "" {
		return fmt.Errorf("the distribute stage copies from the bake region, but there is no bake stage")
	}
	for _, t := range s.Distribute.Targets {
		if err := g.addTarget(t); err != nil {
			return err
		}
	}
	return nil
}

func (g *generator) addTarget(t config.Target) error {
	switch {
	case t.Mode == config.ModeShare && t.Updates() && t.Role == "":
		return fmt.Errorf("target %s: a share target that updates an SSM parameter or launch template needs a role", t.Account)
	case t.Mode == config.ModeShare:
		if t.Updates() {
			// The role updates what points at the shared AMI.
			g.roles = append(g.roles, t.Role)
			tg := g.target(t)
			tg.refs.add(t)
		}
		// Sharing into another region shares a same-account copy made there.
		for _, r := range t.Regions {
			g.shareRegions = append(g.shareRegions, r.Region)
			if r.Region != g.bake {
				g.ownCopies = append(g.ownCopies, r.Region)
			}
			if g.shared == nil {
				g.shared = map[string][]string{}
			}
			g.shared[t.Account] = append(g.shared[t.Account], r.Region)
		}
	case t.Mode == config.ModeCopy && t.Role == "":
		for _, r := range t.Regions {
			g.ownCopies = append(g.ownCopies, r.Region)
			g.ownKeys.add(t.Account, r)
		}
		g.ownRefs.add(t)
	case t.Mode == config.ModeCopy:
		// The target account launches from the source AMI: share it first.
		g.shareRegions = append(g.shareRegions, g.bake)
		g.roles = append(g.roles, t.Role)
		tg := g.target(t)
		for _, r := range t.Regions {
			tg.copyRegions = append(tg.copyRegions, r.Region)
			tg.keys.add(t.Account, r)
		}
		tg.refs.add(t)
	default:
		return fmt.Errorf("target %s: unknown mode %q (want copy or share)", t.Account, t.Mode)
	}
	return nil
}

// target is the account's target role entry, with t's role and regions.
func (g *generator) target(t config.Target) *target {
	tg := g.targets[t.Account]
	if tg == nil {
		tg = &target{}
		g.targets[t.Account] = tg
	}
	tg.roles = append(tg.roles, t.Role)
	for _, r := range t.Regions {
		tg.regions = append(tg.regions, r.Region)
	}
	return tg
}

func (g *generator) policies() *Policies {
	out := &Policies{Pipeline: g.p.Name, Builder: document(g.builderStatements())}
	for _, acct := range slices.Sorted(maps.Keys(g.targets)) {
		t := g.targets[acct]
		if out.Targets == nil {
			out.Targets = map[string]TargetRole{}
		}
		var stmts []Statement
		if len(t.copyRegions) > 0 {
			stmts = append(stmts, Statement{Sid: "CopyIntoThisAccountAnyResourceAsEc2HasNoCopyArnsRegionLimited",
				Action: copyActions, Resource: anyResource, Condition: inRegions(t.copyRegions...)},
				stopCopies("StopCancelledCopiesMadeByKilnOnly", t.copyRegions))
		}
		stmts = append(append(stmts, t.keys.statements("CopyKeys")...), t.refs.statements("")...)
		stmts = append(stmts, g.retentionStatements("Retention", t.regions, t.copyRegions)...)
		out.Targets[acct] = TargetRole{Roles: set(t.roles), Regions: set(t.regions),
			Policy: document(stmts),
			Trust: document([]Statement{{Sid: "TrustKilnBuilderToAssumeThisRole", Principal: &Principal{AWS: g.builder},
				Action: []string{"sts:AssumeRole"}}})}
	}
	if g.shared != nil {
		out.SharedWith = &Shared{Note: "share-mode accounts need no role: kiln gives them launch permission on the AMI " +
			"and create-volume permission on its snapshots with the builder's credentials; nothing runs in them " +
			"unless the target updates an SSM parameter or launch template, which its role (under targets) does",
			Accounts: map[string][]string{}}
		for acct, regions := range g.shared {
			out.SharedWith.Accounts[acct] = set(regions)
		}
	}
	out.Notes = g.notes()
	return out
}

// Sids of the statements whose regions a template's ami_regions extend.
const (
	sidPacker     = "PackerAmazonEbsAnyResourceInBakeAndTestRegions"
	sidBakeTagger = "KilnFindsAndTagsBakedImagesAnyResourceInBakeAndTestRegions"
)

func (g *generator) builderStatements() []Statement {
	var st []Statement
	if g.bake != "" {
		// Packer builds in the bake region and copies to its template's
		// ami_regions, which must include the test region when it differs:
		// the test launches the AMI there. kiln tags the AMI in every region
		// Packer made one.
		st = append(st,
			Statement{Sid: sidPacker, Action: packerActions,
				Resource: anyResource, Condition: inRegions(g.bake, g.test)},
			Statement{Sid: sidBakeTagger, Action: ec2("CreateTags", "DescribeImages"),
				Resource: anyResource, Condition: inRegions(g.bake, g.test)})
	}
	if g.test != "" {
		// DescribeImages finds the snapshots to tag with the outcome.
		st = append(st, Statement{Sid: "KilnTestInstanceAnyResourceAsRunInstancesTouchesManyInTestRegion",
			Action:   ec2("CreateTags", "DescribeImages", "DescribeInstances", "RunInstances", "TerminateInstances"),
			Resource: anyResource, Condition: inRegions(g.test)})
	}
	if g.p.Stages.Distribute != nil {
		st = append(st, Statement{Sid: "KilnDescribesSourceImageAndSnapshotsAnyResourceInBakeRegion",
			Action: ec2("DescribeImages", "DescribeSnapshots"), Resource: anyResource, Condition: inRegions(g.bake)})
	}
	if len(g.shareRegions) > 0 {
		var res []string
		for _, r := range set(g.shareRegions) {
			res = append(res, "arn:aws:ec2:"+r+"::image/*", "arn:aws:ec2:"+r+"::snapshot/*")
		}
		st = append(st, Statement{Sid: "KilnSharesImagesAndSnapshotsWithTargetAccounts",
			Action: ec2("ModifyImageAttribute", "ModifySnapshotAttribute"), Resource: res})
	}
	if len(g.ownCopies) > 0 {
		st = append(st, Statement{Sid: "KilnCopiesInOwnAccountAnyResourceAsEc2HasNoCopyArnsRegionLimited",
			Action: copyActions, Resource: anyResource, Condition: inRegions(g.ownCopies...)},
			stopCopies("KilnStopsItsCancelledCopiesOnly", g.ownCopies))
	}
	st = append(st, g.ownKeys.statements("OwnAccountCopyKeys")...)
	st = append(st, g.ownRefs.statements("Kiln")...)
	st = append(st, g.retentionStatements("KilnRetention", nil, g.p.OwnAMIRegions())...)
	if len(g.roles) > 0 {
		st = append(st, Statement{Sid: "KilnAssumesExactlyTheTargetRoles", Action: []string{"sts:AssumeRole"},
			Resource: set(g.roles)})
	}
	return append(st, publishStatements(g.p)...)
}

func (g *generator) notes() []string {
	var n []string
	if g.builder == PlaceholderBuilderARN {
		n = append(n, "the trust policies name the placeholder "+PlaceholderBuilderARN+
			": pass --builder-arn with the role or user the kiln worker runs as")
	}
	if g.bake != "" {
		n = append(n, fmt.Sprintf("the builder may run Packer, and tag the AMIs it makes, in the bake and test regions (%s); "+
			"if the template's ami_regions copy the AMI to other regions, add them to the aws:RequestedRegion "+
			"conditions of %s and %s, or the copies (and so the bake) fail with UnauthorizedOperation",
			strings.Join(set([]string{g.bake, g.test}), ", "), sidPacker, sidBakeTagger))
	}
	if g.ownKeys.hasAliases() || g.anyTargetAlias() {
		n = append(n, "keys named by alias are matched with the kms:ResourceAliases condition, as an alias ARN "+
			"in Resource does not grant use of its key; the key policies must also allow these principals")
	}
	if len(g.targets) > 0 || g.shared != nil {
		n = append(n, "if the baked AMI is encrypted with a customer managed key, that key's policy must let the "+
			"target accounts use it; AMIs encrypted with the AWS managed aws/ebs key cannot be shared")
	}
	return n
}

func (g *generator) anyTargetAlias() bool {
	for _, t := range g.targets {
		if t.keys.hasAliases() {
			return true
		}
	}
	return false
}

// keys are KMS keys as Resource ARNs: exact keys, and keys named by alias.
type keys struct {
	arns    []string // exact key ARNs
	aliased []string // key/* ARNs of the regions of aliased keys
	aliases []string // "alias/x" names
}

// add records a region's key. A bare key ID becomes a key ARN in the
// target's account and region; an alias becomes a condition on the aliases
// of any key there, since IAM evaluates key operations against the key.
func (k *keys) add(account string, r config.TargetRegion) {
	key := r.KMSKey
	switch {
	case key == "":
	case strings.HasPrefix(key, "arn:") && strings.Contains(key, ":alias/"):
		prefix, alias, _ := strings.Cut(key, ":alias/")
		k.aliased = append(k.aliased, prefix+":key/*")
		k.aliases = append(k.aliases, "alias/"+alias)
	case strings.HasPrefix(key, "arn:"):
		k.arns = append(k.arns, key)
	case strings.HasPrefix(key, "alias/"):
		k.aliased = append(k.aliased, kmsARN(r.Region, account, "key/*"))
		k.aliases = append(k.aliases, key)
	default:
		k.arns = append(k.arns, kmsARN(r.Region, account, "key/"+key))
	}
}

func (k keys) hasAliases() bool { return len(k.aliases) > 0 }

// statements grant EBS the use of the keys for encrypted copies. CreateGrant
// is limited to grants for AWS resources, which is how EBS uses it.
func (k keys) statements(what string) []Statement {
	forEBS := map[string][]string{"kms:GrantIsForAWSResource": {"true"}}
	var st []Statement
	if len(k.arns) > 0 {
		st = append(st,
			Statement{Sid: "KmsUse" + what, Action: kmsUseActions, Resource: set(k.arns)},
			Statement{Sid: "KmsCreateGrantForEbsOn" + what, Action: []string{"kms:CreateGrant"},
				Resource: set(k.arns), Condition: Condition{"Bool": forEBS}})
	}
	if len(k.aliases) > 0 {
		byAlias := map[string][]string{"kms:ResourceAliases": set(k.aliases)}
		st = append(st,
			Statement{Sid: "KmsUse" + what + "ByAliasKeyPoliciesMustAlsoAllow", Action: kmsUseActions,
				Resource: set(k.aliased), Condition: Condition{"ForAnyValue:StringEquals": byAlias}},
			Statement{Sid: "KmsCreateGrantForEbsOn" + what + "ByAliasKeyPoliciesMustAlsoAllow",
				Action: []string{"kms:CreateGrant"}, Resource: set(k.aliased),
				Condition: Condition{"ForAnyValue:StringEquals": byAlias, "Bool": forEBS}})
	}
	return st
}

var anyResource = []string{"*"}

func document(st []Statement) Document {
	for i := range st {
		st[i].Effect = "Allow"
	}
	return Document{Version: Version, Statement: st}
}

// stopCopies lets kiln deregister, when a run is cancelled, the copies it
// is waiting for: only images carrying its kiln:source tag, in the copy
// regions.
func stopCopies(sid string, regions []string) Statement {
	var res []string
	for _, r := range set(regions) {
		res = append(res, "arn:aws:ec2:"+r+"::image/*")
	}
	return Statement{Sid: sid, Action: ec2("DeregisterImage"), Resource: res,
		Condition: Condition{"StringLike": {"aws:ResourceTag/kiln:source": []string{"ami-*"}}}}
}

func inRegions(regions ...string) Condition {
	return Condition{"StringEquals": {"aws:RequestedRegion": set(regions)}}
}

func kmsARN(region, account, resource string) string {
	return "arn:aws:kms:" + region + ":" + account + ":" + resource
}

func ec2(names ...string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "ec2:" + n
	}
	return set(out)
}

// set returns the strings sorted, without duplicates or empties.
func set(in []string) []string {
	out := slices.DeleteFunc(slices.Clone(in), func(s string) bool { return s == "" })
	slices.Sort(out)
	return slices.Compact(out)
}
