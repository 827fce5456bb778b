package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Store is where archive objects go. Put must be durable when it returns
// nil and must replace an existing object of the same key. Implementations
// are safe for concurrent use.
type Store interface {
	Put(ctx context.Context, key string, body []byte) error
	// List returns the keys under prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// Get returns the object's contents.
	Get(ctx context.Context, key string) ([]byte, error)
	// String describes the store for logs ("dir /var/x", "s3://b/p").
	String() string
}

// Dir is a Store in a local directory, with keys as slash-separated
// relative paths. Put writes a temporary file, fsyncs it and renames it
// into place, so a crash leaves either the old or the new object.
type Dir struct{ Root string }

// String implements Store.
func (d Dir) String() string { return "dir " + d.Root }

// Put implements Store.
func (d Dir) Put(_ context.Context, key string, body []byte) error {
	name := filepath.Join(d.Root, filepath.FromSlash(key))
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("archive put %s: %w", key, err)
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("archive put %s: %w", key, err)
	}
	tmp := f.Name()
	_, err = f.Write(body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("archive put %s: %w", key, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("archive put %s: %w", key, err)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// List implements Store.
func (d Dir) List(_ context.Context, prefix string) ([]string, error) {
	var keys []string
	root := filepath.Join(d.Root, filepath.FromSlash(prefix))
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() || strings.HasPrefix(e.Name(), ".tmp-") {
			return nil
		}
		rel, err := filepath.Rel(d.Root, p)
		if err != nil {
			return err
		}
		keys = append(keys, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("archive list %s: %w", prefix, err)
	}
	sort.Strings(keys)
	return keys, nil
}

// Get implements Store.
func (d Dir) Get(_ context.Context, key string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(d.Root, filepath.FromSlash(key)))
	if err != nil {
		return nil, fmt.Errorf("archive get %s: %w", key, err)
	}
	return b, nil
}

// S3 is a Store in an S3 bucket under Prefix (no leading or trailing
// slash; may be empty). The client is configured by the caller (region,
// credentials, endpoint override for S3-compatible servers).
type S3 struct {
	Client *s3.Client
	Bucket string
	Prefix string
}

// String implements Store.
func (s S3) String() string { return "s3://" + path.Join(s.Bucket, s.Prefix) }

func (s S3) key(k string) string {
	if s.Prefix == "" {
		return k
	}
	return s.Prefix + "/" + k
}

// Put implements Store.
func (s S3) Put(ctx context.Context, key string, body []byte) error {
	_, err := s.Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.Bucket),
		Key:           aws.String(s.key(key)),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String("application/vnd.apache.parquet"),
	})
	if err != nil {
		return fmt.Errorf("archive put s3://%s/%s: %w", s.Bucket, s.key(key), err)
	}
	return nil
}

// List implements Store. Returned keys are relative to Prefix.
func (s S3) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(s.Client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.Bucket),
		Prefix: aws.String(s.key(prefix)),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("archive list s3://%s/%s: %w", s.Bucket, s.key(prefix), err)
		}
		for _, o := range page.Contents {
			k := aws.ToString(o.Key)
			if s.Prefix != "" {
				k = strings.TrimPrefix(k, s.Prefix+"/")
			}
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// Get implements Store.
func (s S3) Get(ctx context.Context, key string) ([]byte, error) {
	out, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(s.key(key))})
	if err != nil {
		return nil, fmt.Errorf("archive get s3://%s/%s: %w", s.Bucket, s.key(key), err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("archive get s3://%s/%s: %w", s.Bucket, s.key(key), err)
	}
	return b, nil
}

// ParseS3URL splits "s3://bucket/prefix" into bucket and prefix.
func ParseS3URL(u string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(u, "s3://")
	if !ok {
		return "", "", fmt.Errorf("archive url %q: want s3://bucket/prefix", u)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	prefix = strings.Trim(prefix, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("archive url %q: empty bucket", u)
	}
	if err := validBucket(bucket); err != nil {
		return "", "", fmt.Errorf("archive url %q: bucket %q: %v", u, bucket, err)
	}
	return bucket, prefix, nil
}

// validBucket applies the S3 bucket naming rules (general purpose
// buckets): 3-63 characters of lower-case letters, digits, '.' and '-',
// starting and ending with a letter or digit, no "..", not an IPv4
// address, none of the reserved prefixes and suffixes. Every flush would
// fail on a bucket S3 cannot have, so the cloud refuses it at start.
func validBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("%d characters, want 3 to 63", len(b))
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return fmt.Errorf("character %q at %d: want lower-case letters, digits, '.' or '-'", c, i)
		}
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	switch {
	case !alnum(b[0]) || !alnum(b[len(b)-1]):
		return errors.New("must start and end with a letter or digit")
	case strings.Contains(b, ".."):
		return errors.New(`must not contain ".."`)
	case net.ParseIP(b) != nil:
		return errors.New("must not be an IP address")
	case strings.HasPrefix(b, "xn--") || strings.HasPrefix(b, "sthree-") || strings.HasPrefix(b, "amzn-s3-demo-"):
		return errors.New("reserved prefix")
	case strings.HasSuffix(b, "-s3alias") || strings.HasSuffix(b, "--ol-s3") || strings.HasSuffix(b, ".mrap") || strings.HasSuffix(b, "--x-s3"):
		return errors.New("reserved suffix")
	}
	return nil
}
