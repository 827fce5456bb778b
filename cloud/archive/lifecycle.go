package archive

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// LifecycleRuleID names the rule ApplyLifecycle writes.
const LifecycleRuleID = "tankguard-archive-to-glacier"

// ApplyLifecycle sets the bucket's lifecycle configuration to one rule
// moving objects under prefix to the GLACIER storage class days days after
// creation. It replaces the bucket's whole lifecycle configuration.
func ApplyLifecycle(ctx context.Context, client *s3.Client, bucket, prefix string, days int32) error {
	if days < 1 {
		return fmt.Errorf("archive lifecycle: days must be at least 1, got %d", days)
	}
	p := prefix
	if p != "" {
		p += "/"
	}
	_, err := client.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{
		Bucket: aws.String(bucket),
		LifecycleConfiguration: &s3types.BucketLifecycleConfiguration{Rules: []s3types.LifecycleRule{{
			ID:          aws.String(LifecycleRuleID),
			Status:      s3types.ExpirationStatusEnabled,
			Filter:      &s3types.LifecycleRuleFilter{Prefix: aws.String(p)},
			Transitions: []s3types.Transition{{Days: aws.Int32(days), StorageClass: s3types.TransitionStorageClassGlacier}},
		}}},
	})
	if err != nil {
		if notSupported(err) {
			return fmt.Errorf("archive lifecycle s3://%s/%s: %w: %v", bucket, prefix, ErrLifecycleNotSupported, err)
		}
		return fmt.Errorf("archive lifecycle s3://%s/%s: %w", bucket, prefix, err)
	}
	return nil
}

// ErrLifecycleNotSupported reports an S3 endpoint that does not implement
// bucket lifecycle rules (HTTP 501 NotImplemented, as versitygw and some
// other S3-compatible servers answer): a property of the server, not a
// failure to retry or alarm on.
var ErrLifecycleNotSupported = errors.New("the S3 server does not support lifecycle rules")

// notSupported reports whether err is an S3 "not implemented" answer.
func notSupported(err error) bool {
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) && status.HTTPStatusCode() == http.StatusNotImplemented {
		return true
	}
	var api interface{ ErrorCode() string } // smithy.APIError
	return errors.As(err, &api) && api.ErrorCode() == "NotImplemented"
}
