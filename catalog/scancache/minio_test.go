package scancache_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/lakehouse-dev/lakehouse/catalog/scancache/scancachetest"
	"github.com/lakehouse-dev/lakehouse/catalog/warehouse"
	"github.com/lakehouse-dev/lakehouse/internal/miniotest"
)

// minioStore is an S3 warehouse on MinIO as the suite's store: reads go
// through the product's Storage, replacing writes through the S3 client
// (the Storage itself writes each object once).
type minioStore struct {
	warehouse.Storage
	srv    *miniotest.Server
	prefix string
}

func (m minioStore) Put(ctx context.Context, key string, data []byte) error {
	k := m.prefix + "/" + key
	_, err := m.srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: &m.srv.Bucket, Key: &k, Body: bytes.NewReader(data)})
	return err
}

// TestSuiteS3 runs the cache's suite against a real S3 server (MinIO).
func TestSuiteS3(t *testing.T) {
	srv := miniotest.Start(t)
	n := 0
	scancachetest.Run(t, func(t *testing.T) scancachetest.Store {
		n++
		prefix := fmt.Sprintf("suite%d", n)
		st, err := warehouse.Open(context.Background(), warehouse.Config{
			URI: "s3://" + srv.Bucket + "/" + prefix,
			S3:  warehouse.S3Options{Endpoint: srv.Endpoint}})
		if err != nil {
			t.Fatal(err)
		}
		return minioStore{Storage: st, srv: srv, prefix: prefix}
	})
}
