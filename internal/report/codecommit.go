package report

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codecommit"
)

// codeCommitMaxContent is CodeCommit's limit on a comment's content, in
// characters.
const codeCommitMaxContent = 10240

// CodeCommitAPI is the part of *codecommit.Client the reporter uses.
type CodeCommitAPI interface {
	GetCommentsForPullRequest(ctx context.Context, in *codecommit.GetCommentsForPullRequestInput, opts ...func(*codecommit.Options)) (*codecommit.GetCommentsForPullRequestOutput, error)
	PostCommentForPullRequest(ctx context.Context, in *codecommit.PostCommentForPullRequestInput, opts ...func(*codecommit.Options)) (*codecommit.PostCommentForPullRequestOutput, error)
	UpdateComment(ctx context.Context, in *codecommit.UpdateCommentInput, opts ...func(*codecommit.Options)) (*codecommit.UpdateCommentOutput, error)
}

// CodeCommit reports review runs of AWS CodeCommit repositories.
type CodeCommit struct {
	Client CodeCommitAPI
}

// CodeCommitPR names a CodeCommit pull request and the commits a comment is
// about: the destination (before) and source (after) heads.
type CodeCommitPR struct {
	Repository                string
	BeforeCommit, AfterCommit string
}

// UpsertComment keeps one comment per run on the pull request, as
// UpsertComment does on GitHub: it finds the comment by its marker and
// updates it, or posts it with a ClientRequestToken derived from the run and
// the body, so a retried post of the same report does not post twice. It
// returns the comment's ID.
func (c *CodeCommit) UpsertComment(ctx context.Context, run Run, pr CodeCommitPR) (string, error) {
	if run.PR == 0 || run.RunID == "" || pr.Repository == "" || pr.BeforeCommit == "" || pr.AfterCommit == "" {
		return "", fmt.Errorf("%w: a CodeCommit comment needs a pull request, a run ID, the repository and both commits", ErrInvalid)
	}
	body := codeCommitBody(run)
	id, err := c.find(ctx, run, pr)
	if err != nil {
		return "", err
	}
	if id != "" {
		_, err := c.Client.UpdateComment(ctx, &codecommit.UpdateCommentInput{CommentId: aws.String(id), Content: aws.String(body)})
		return id, classifyCodeCommit(err, "update comment "+id)
	}
	out, err := c.Client.PostCommentForPullRequest(ctx, &codecommit.PostCommentForPullRequestInput{
		PullRequestId:      aws.String(strconv.Itoa(run.PR)),
		RepositoryName:     aws.String(pr.Repository),
		BeforeCommitId:     aws.String(pr.BeforeCommit),
		AfterCommitId:      aws.String(pr.AfterCommit),
		Content:            aws.String(body),
		ClientRequestToken: aws.String(commentToken(run.RunID, body)),
	})
	if err != nil {
		return "", classifyCodeCommit(err, fmt.Sprintf("comment on pull request %d of %s", run.PR, pr.Repository))
	}
	if out.Comment == nil {
		return "", nil
	}
	return aws.ToString(out.Comment.CommentId), nil
}

// find returns the ID of the run's comment, the one that starts with its
// marker, reading every page.
func (c *CodeCommit) find(ctx context.Context, run Run, pr CodeCommitPR) (string, error) {
	marker := Marker(run.RunID)
	p := codecommit.NewGetCommentsForPullRequestPaginator(c.Client, &codecommit.GetCommentsForPullRequestInput{
		PullRequestId: aws.String(strconv.Itoa(run.PR)), RepositoryName: aws.String(pr.Repository),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", classifyCodeCommit(err, fmt.Sprintf("read the comments of pull request %d of %s", run.PR, pr.Repository))
		}
		for _, data := range page.CommentsForPullRequestData {
			for _, cm := range data.Comments {
				if strings.HasPrefix(aws.ToString(cm.Content), marker) {
					return aws.ToString(cm.CommentId), nil
				}
			}
		}
	}
	return "", nil
}

// codeCommitBody is the comment body within CodeCommit's limit.
func codeCommitBody(run Run) string {
	return fitComment(run, codeCommitMaxContent)
}

// commentToken is the post's idempotency token: one per run and body.
// CodeCommit refuses a token used before with other content, and each report
// of a run says something new; a token per run alone would make every post
// after one whose comment was not found again fail. It stays 37 characters
// long, as the per-run token was, whatever the body.
func commentToken(runID, body string) string {
	sum := sha256.Sum256([]byte("kiln-comment\x00" + runID + "\x00" + body))
	return "kiln-" + hex.EncodeToString(sum[:])[:32]
}

// classifyCodeCommit maps refusals to the package's errors, so callers can
// stop retrying; throttling and server errors stay as they are.
func classifyCodeCommit(err error, what string) error {
	if err == nil {
		return nil
	}
	var apiErr interface{ ErrorCode() string }
	if errors.As(err, &apiErr) {
		switch code := apiErr.ErrorCode(); {
		case code == "AccessDeniedException" || code == "EncryptionKeyAccessDeniedException":
			return fmt.Errorf("%s: %w: %v", what, ErrUnauthorized, err)
		case strings.HasSuffix(code, "DoesNotExistException"):
			return fmt.Errorf("%s: %w: %v", what, ErrNotFound, err)
		case strings.HasPrefix(code, "Invalid") || strings.HasSuffix(code, "RequiredException") ||
			code == "CommentContentSizeLimitExceededException" || code == "PullRequestStatusRequiredException" ||
			// The token was used with other content: the same post cannot
			// succeed however often it is tried.
			code == "IdempotencyParameterMismatchException":
			return fmt.Errorf("%s: %w: %v", what, ErrInvalid, err)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}
