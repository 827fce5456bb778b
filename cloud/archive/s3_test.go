package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/abc4logistics/tankguard/cloud/internal/s3test"
)

// TestS3Versity runs the archive against versitygw: write, overwrite by
// the same range, list and read back under a prefix.
func TestS3Versity(t *testing.T) {
	endpoint := s3test.Versity(t)
	client := s3test.Client(endpoint)
	s3test.Bucket(t, client, "fleet-archive")
	st := S3{Client: client, Bucket: "fleet-archive", Prefix: "prod/v1"}
	ctx := context.Background()
	rows := syntheticReadings(3, 20)
	for range 2 { // the second write of the same range must overwrite
		b := Batch{Readings: slices.Clone(rows)}
		if _, err := Write(ctx, st, Stem("feedfacefeedface", 5, 7), &b); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := st.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "readings/dt=2026-11-26/hour=01/part-feedfacefeedface-00000000000000000005-00000000000000000007.parquet" {
		t.Fatalf("keys %q", keys)
	}
	got, err := ReadReadingsFrom(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	sortReadings(got)
	sortReadings(rows)
	if !slices.Equal(got, rows) {
		t.Fatalf("read back %d rows, not the %d written", len(got), len(rows))
	}
	// The lifecycle call is not implemented by versitygw: it fails with
	// ErrLifecycleNotSupported (a warning for the cloud), not hang or panic.
	if err := ApplyLifecycle(ctx, client, "fleet-archive", "prod/v1", 90); err == nil {
		t.Log("versitygw accepted the lifecycle configuration")
	} else if !errors.Is(err, ErrLifecycleNotSupported) {
		t.Errorf("versitygw lifecycle error %v is not ErrLifecycleNotSupported", err)
	}
}

// TestApplyLifecycleRequest asserts the PutBucketLifecycleConfiguration
// request on a recording server.
func TestApplyLifecycleRequest(t *testing.T) {
	var mu sync.Mutex
	var method, path, query, body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		method, path, query, body = r.Method, r.URL.Path, r.URL.RawQuery, string(b)
		mu.Unlock()
	}))
	defer srv.Close()
	client := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("a", "b", ""),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ApplyLifecycle(ctx, client, "fleet-archive", "prod", 90); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if method != "PUT" || path != "/fleet-archive" || !strings.Contains(query, "lifecycle") {
		t.Fatalf("request %s %s?%s", method, path, query)
	}
	for _, want := range []string{"<ID>" + LifecycleRuleID + "</ID>", "<Status>Enabled</Status>", "<Prefix>prod/</Prefix>", "<Days>90</Days>", "<StorageClass>GLACIER</StorageClass>"} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %s:\n%s", want, body)
		}
	}
	if err := ApplyLifecycle(ctx, client, "b", "", 0); err == nil {
		t.Error("0 days accepted")
	}
}

// TestLifecycleNotSupported: a server answering 501 NotImplemented is
// told apart from a real failure (403 here).
func TestLifecycleNotSupported(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   string
		want   bool
	}{{501, "NotImplemented", true}, {403, "AccessDenied", false}} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(tc.status)
			fmt.Fprintf(w, "<Error><Code>%s</Code><Message>no</Message></Error>", tc.code)
		}))
		client := s3.New(s3.Options{
			Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true,
			Credentials:      credentials.NewStaticCredentialsProvider("a", "b", ""),
			RetryMaxAttempts: 1,
		})
		err := ApplyLifecycle(context.Background(), client, "fleet-archive", "prod", 90)
		srv.Close()
		if err == nil || errors.Is(err, ErrLifecycleNotSupported) != tc.want {
			t.Errorf("HTTP %d: err %v, not-supported %v, want %v", tc.status, err, errors.Is(err, ErrLifecycleNotSupported), tc.want)
		}
	}
}

func TestAthenaDDL(t *testing.T) {
	ddl := AthenaDDL("s3://fleet-archive/prod/", "tankguard")
	if !strings.HasPrefix(ddl, "CREATE DATABASE IF NOT EXISTS tankguard;\n") {
		t.Errorf("DDL does not start by creating the database:\n%.200s", ddl)
	}
	// The projected range is relative to the query's time: no fixed date
	// that a later year would outgrow.
	if !strings.Contains(ddl, "'projection.dt.range'='NOW-10YEARS,NOW+1DAYS'") || regexp.MustCompile(`'projection\.dt\.range'='[0-9]`).MatchString(ddl) {
		t.Errorf("projection range is fixed:\n%s", ddl)
	}
	for _, want := range []string{
		"CREATE EXTERNAL TABLE IF NOT EXISTS tankguard.readings (",
		"`time_ns` bigint", "`value` double", "`flags` int", "`truck` string",
		"PARTITIONED BY (`dt` string, `hour` string)",
		"LOCATION 's3://fleet-archive/prod/readings/'",
		"'storage.location.template'='s3://fleet-archive/prod/readings/dt=${dt}/hour=${hour}/'",
		"'projection.hour.digits'='2'",
		"CREATE EXTERNAL TABLE IF NOT EXISTS tankguard.alerts (", "`source` string",
		"CREATE EXTERNAL TABLE IF NOT EXISTS tankguard.acks (",
		"CREATE EXTERNAL TABLE IF NOT EXISTS tankguard.dtcs (", "`spn` int", "`red_stop` string",
	} {
		if !strings.Contains(ddl, want) {
			t.Errorf("DDL lacks %q", want)
		}
	}
}
