package awsproxy

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParseRequestQueryAndJSON(t *testing.T) {
	auth := "AWS4-HMAC-SHA256 Credential=AKID1/20240101/eu-west-1/ec2/aws4_request, SignedHeaders=host, Signature=x"
	r, _ := http.NewRequest("POST", "http://x/", nil)
	r.Header.Set("Authorization", auth)
	req := parseRequest(r, []byte("Action=CopyImage&Version=2016-11-15&Encrypted=true"))
	assert.Equal(t, Request{Time: req.Time, Service: "ec2", Region: "eu-west-1", AccessKeyID: "AKID1",
		Action: "CopyImage", Params: req.Params, Body: req.Body}, req)
	assert.Equal(t, "true", req.Params.Get("Encrypted"))

	r.Header.Set("X-Amz-Target", "TrentService.Encrypt")
	req = parseRequest(r, []byte(`{"KeyId":"k"}`))
	assert.Equal(t, "Encrypt", req.Action)
	assert.True(t, req.isJSON())
}

func TestRewriteItemsOnlyTopLevel(t *testing.T) {
	body := `<r><imagesSet><item><imageId>ami-1</imageId><blockDeviceMapping><item><a/></item></blockDeviceMapping>` +
		`<imageState>available</imageState></item><item><imageId>ami-2</imageId></item></imagesSet></r>`
	var items []string
	out := rewriteItems([]byte(body), func(item []byte) []byte {
		items = append(items, string(item))
		return item
	})
	assert.Equal(t, body, string(out))
	assert.Len(t, items, 2)
	assert.Contains(t, items[0], "ami-1")
	assert.Contains(t, items[0], "<item><a/></item>")
}

func TestLaunchUsersBothForms(t *testing.T) {
	add, remove := launchUsers(url.Values{
		"LaunchPermission.Add.1.UserId":    {"111111111111"},
		"LaunchPermission.Add.2.Group":     {"all"},
		"LaunchPermission.Remove.1.UserId": {"333333333333"},
	})
	assert.Equal(t, []string{"111111111111"}, add)
	assert.Equal(t, []string{"333333333333"}, remove)

	add, remove = launchUsers(url.Values{"OperationType": {"add"}, "UserIds.1": {"222222222222"}})
	assert.Equal(t, []string{"222222222222"}, add)
	assert.Empty(t, remove)
}
