package notify_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/notify"
	"github.com/kiln-ci/kiln/test/motoserver"
)

// motoConfig points the SDK at a test's moto_server with dummy credentials.
func motoConfig(url string) aws.Config {
	return aws.Config{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
	}
}

func TestSESSendsThroughMoto(t *testing.T) {
	moto := motoserver.Start(t)
	ctx := context.Background()
	client := sesv2.NewFromConfig(motoConfig(moto.URL))

	m := failed()
	m.To = append(m.To, "not-an-address")
	s := notify.SES{Client: client, From: "ci@example.com"}
	assert.ErrorContains(t, s.Send(ctx, m), "not verified", "moto, like SES, wants a verified sender")

	_, err := client.CreateEmailIdentity(ctx, &sesv2.CreateEmailIdentityInput{EmailIdentity: aws.String("ci@example.com")})
	require.NoError(t, err)
	require.NoError(t, s.Send(ctx, m))

	sent := motoserver.SentMail(t, moto)
	require.Len(t, sent, 1)
	got := sent[0]
	assert.Equal(t, "ci@example.com", got.Source)
	assert.Equal(t, []string{"dev1@example.com", "dev2@example.com"}, got.To)
	assert.Equal(t, "[kiln] app main: failed at test (0123abc)", got.Subject)
	assert.Equal(t, notify.Body(m), got.Body)
	assert.Contains(t, got.Body, "Error:    go test exited 1")
}

func TestSNSPublishesToSubscribedQueue(t *testing.T) {
	moto := motoserver.Start(t)
	ctx := context.Background()
	client := sns.NewFromConfig(motoConfig(moto.URL))
	topic, err := client.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("kiln-runs")})
	require.NoError(t, err)

	queueURL := sqsCall(t, moto.URL, "CreateQueue", map[string]any{"QueueName": "runs"})["QueueUrl"].(string)
	attrs := sqsCall(t, moto.URL, "GetQueueAttributes", map[string]any{"QueueUrl": queueURL, "AttributeNames": []string{"QueueArn"}})
	queueARN := attrs["Attributes"].(map[string]any)["QueueArn"].(string)
	_, err = client.Subscribe(ctx, &sns.SubscribeInput{
		TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(queueARN),
	})
	require.NoError(t, err)

	m := failed()
	m.Pipeline = "a-pipeline-name-long-enough-that-the-subject-goes-past-the-hundred-characters-sns-allows"
	require.NoError(t, notify.SNS{Client: client, TopicARN: *topic.TopicArn}.Send(ctx, m))

	recv := sqsCall(t, moto.URL, "ReceiveMessage", map[string]any{"QueueUrl": queueURL, "MaxNumberOfMessages": 10})
	msgs, _ := recv["Messages"].([]any)
	require.Len(t, msgs, 1)
	var note struct {
		TopicArn, Subject, Message string
		MessageAttributes          map[string]struct{ Type, Value string }
	}
	require.NoError(t, json.Unmarshal([]byte(msgs[0].(map[string]any)["Body"].(string)), &note))
	assert.Equal(t, *topic.TopicArn, note.TopicArn)
	assert.Len(t, []rune(note.Subject), 100)
	assert.Equal(t, notify.Subject(m)[:97]+"...", note.Subject)
	assert.Equal(t, notify.Body(m), note.Message)
	assert.Equal(t, "failed", note.MessageAttributes["outcome"].Value)
	assert.Equal(t, m.Pipeline, note.MessageAttributes["pipeline"].Value)
}

// sqsCall makes one SQS JSON-protocol call to moto, signed so moto routes it
// to SQS; go.mod has no SQS client, and the test needs only three calls.
func sqsCall(t *testing.T, url, action string, in map[string]any) map[string]any {
	t.Helper()
	body, err := json.Marshal(in)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, url+"/", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "AmazonSQS."+action)
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: "testing", SecretAccessKey: "testing"}
	require.NoError(t, v4.NewSigner().SignHTTP(context.Background(), creds, req,
		hex.EncodeToString(sum[:]), "sqs", "us-east-1", time.Now()))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %v", action, out)
	return out
}
