package archive

import (
	"context"
	"fmt"

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
		return fmt.Errorf("archive lifecycle s3://%s/%s: %w", bucket, prefix, err)
	}
	return nil
}
