package warehouse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// S3Options configure an S3 warehouse.
type S3Options struct {
	// Endpoint is the URL of an S3-compatible service (MinIO:
	// http://127.0.0.1:9000); it switches to path-style addressing.
	// Default: AWS's endpoint for the region.
	Endpoint string
	// Region overrides the region of the shared config and environment;
	// with an Endpoint and no region anywhere, us-east-1.
	Region string
	// PartSize is the size of the parts of a multipart upload, and the
	// largest object written with a single PUT. Default 16 MiB, at least
	// 5 MiB (S3's minimum part).
	PartSize int64
	// MaxAttempts bounds the attempts of one request. Default 3.
	MaxAttempts int
}

// Defaults of S3Options.
const (
	DefaultPartSize    = 16 << 20
	minPartSize        = 5 << 20
	defaultMaxAttempts = 3
)

// S3 is a warehouse under a prefix of an S3 bucket. Credentials come from
// the standard chain (environment, shared config and profile, instance
// metadata).
type S3 struct {
	client   *s3.Client
	bucket   string
	prefix   string // "" or "a/b/" (with the trailing slash)
	root     string // s3://bucket[/prefix]
	partSize int64
}

var _ Storage = (*S3)(nil)

// NewS3 returns the warehouse at loc (an s3 Location). It sends no request.
func NewS3(ctx context.Context, loc Location, opts S3Options) (*S3, error) {
	if loc.Scheme != "s3" {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "warehouse %s is not an s3:// location", loc)
	}
	if opts.PartSize == 0 {
		opts.PartSize = DefaultPartSize
	}
	if opts.PartSize < minPartSize {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "S3 part size %d is below the minimum of 5 MiB", opts.PartSize)
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = defaultMaxAttempts
	}
	lopts := []func(*config.LoadOptions) error{config.WithRetryMaxAttempts(opts.MaxAttempts)}
	if opts.Region != "" {
		lopts = append(lopts, config.WithRegion(opts.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, lopts...)
	if err != nil {
		return nil, errdefs.WithHint(errdefs.ErrFailedPrecondition, "check AWS_PROFILE, AWS_CONFIG_FILE and ~/.aws/config",
			"loading the AWS configuration: %v", err)
	}
	if cfg.Region == "" {
		if opts.Endpoint == "" {
			return nil, errdefs.WithHint(errdefs.ErrFailedPrecondition, "set AWS_REGION or a region in ~/.aws/config",
				"no AWS region is configured for warehouse %s", loc)
		}
		cfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		// Ranged reads carry no whole-object checksum to validate;
		// don't warn about it on stderr.
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.DisableLogOutputChecksumValidationSkipped = true
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
			o.UsePathStyle = true
		}
	})
	prefix := loc.Path
	if prefix != "" {
		prefix += "/"
	}
	return &S3{client: client, bucket: loc.Bucket, prefix: prefix, root: loc.String(), partSize: opts.PartSize}, nil
}

func (s *S3) Root() string          { return s.root }
func (s *S3) URI(key string) string { return s.root + "/" + key }
func (s *S3) Key(uri string) (string, bool) {
	return keyUnder(s.root, uri)
}

func (s *S3) objectKey(key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	return s.prefix + key, nil
}

// s3Err classifies an S3 error.
func (s *S3) s3Err(op, key string, err error) error {
	what := fmt.Sprintf("%s %s", op, s.URI(key))
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	var (
		nsk *types.NoSuchKey
		nf  *types.NotFound
		nsb *types.NoSuchBucket
	)
	switch {
	case errors.As(err, &nsk), errors.As(err, &nf):
		return fmt.Errorf("%s: %w", what, errdefs.ErrNotFound)
	case errors.As(err, &nsb):
		return errdefs.WithHint(errdefs.ErrFailedPrecondition, "create the bucket, or point --warehouse at an existing one",
			"%s: bucket %s does not exist", what, s.bucket)
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return fmt.Errorf("%s: %w", what, errdefs.ErrNotFound)
		case "NoSuchBucket":
			return errdefs.WithHint(errdefs.ErrFailedPrecondition, "create the bucket, or point --warehouse at an existing one",
				"%s: bucket %s does not exist", what, s.bucket)
		case "PreconditionFailed", "ConditionalRequestConflict":
			return fmt.Errorf("%s: the object exists: %w", what, errdefs.ErrAlreadyExists)
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden":
			return errdefs.WithHint(errdefs.ErrPermissionDenied, "check the AWS credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE)",
				"%s: %s", what, api.ErrorMessage())
		}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch code := re.HTTPStatusCode(); {
		case code == http.StatusNotFound:
			return fmt.Errorf("%s: %w", what, errdefs.ErrNotFound)
		case code == http.StatusPreconditionFailed:
			return fmt.Errorf("%s: the object exists: %w", what, errdefs.ErrAlreadyExists)
		case code == http.StatusForbidden:
			return errdefs.WithHint(errdefs.ErrPermissionDenied, "check the AWS credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE)", "%s: %v", what, err)
		case code == 0 || code >= 500: // 0: no response
			return errdefs.WithHint(errdefs.ErrUnavailable, "try again later", "%s: %v", what, err)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	// No response at all: the service could not be reached.
	return errdefs.WithHint(errdefs.ErrUnavailable, "check that the S3 service is reachable (--s3-endpoint) and try again",
		"%s: %v", what, err)
}

func (s *S3) Stat(ctx context.Context, key string) (int64, string, error) {
	k, err := s.objectKey(key)
	if err != nil {
		return 0, "", err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &k})
	if err != nil {
		return 0, "", s.s3Err("stat", key, err)
	}
	return aws.ToInt64(out.ContentLength), strings.Trim(aws.ToString(out.ETag), `"`), nil
}

func (s *S3) ReadRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	k, err := s.objectKey(key)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	in := &s3.GetObjectInput{Bucket: &s.bucket, Key: &k}
	switch {
	case n > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	case off > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", off))
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		return nil, s.s3Err("read", key, err)
	}
	return &s3Body{rc: out.Body, s: s, key: key}, nil
}

// s3Body classifies the errors of reading a response body.
type s3Body struct {
	rc  io.ReadCloser
	s   *S3
	key string
}

func (b *s3Body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		err = errdefs.WithHint(errdefs.ErrUnavailable, "try again later", "read %s: %v", b.s.URI(b.key), err)
	}
	return n, err
}

func (b *s3Body) Close() error { return b.rc.Close() }

func (s *S3) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	p := s.prefix + prefix
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &p})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return s.s3Err("list", prefix, err)
		}
		for _, o := range page.Contents {
			info := ObjectInfo{
				Key:  strings.TrimPrefix(aws.ToString(o.Key), s.prefix),
				Size: aws.ToInt64(o.Size), ETag: strings.Trim(aws.ToString(o.ETag), `"`),
				ModTime: aws.ToTime(o.LastModified),
			}
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *S3) Delete(ctx context.Context, key string) error {
	k, err := s.objectKey(key)
	if err != nil {
		return err
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &k}); err != nil {
		if err := s.s3Err("delete", key, err); !errdefs.Is(err, errdefs.ErrNotFound) {
			return err
		}
	}
	return nil
}

// Create buffers up to PartSize: a smaller object is one conditional PUT,
// a larger one a multipart upload completed on Close. Both refuse to
// replace an existing object (If-None-Match: *).
func (s *S3) Create(ctx context.Context, key string) (Writer, error) {
	k, err := s.objectKey(key)
	if err != nil {
		return nil, err
	}
	return &s3Writer{ctx: ctx, s: s, key: key, okey: k}, nil
}

// MultipartUpload is an upload begun and neither completed nor aborted:
// its parts are invisible but stored (and billed) until aborted.
type MultipartUpload struct {
	Key       string
	UploadID  string
	Initiated time.Time
}

// ListUploads lists the unfinished multipart uploads under prefix.
func (s *S3) ListUploads(ctx context.Context, prefix string, fn func(MultipartUpload) error) error {
	// The whole bucket is listed and filtered here: MinIO answers a
	// prefix that is not a whole object name with no uploads.
	p := s.prefix + prefix
	in := &s3.ListMultipartUploadsInput{Bucket: &s.bucket}
	for {
		out, err := s.client.ListMultipartUploads(ctx, in)
		if err != nil {
			return s.s3Err("list uploads", prefix, err)
		}
		for _, u := range out.Uploads {
			if !strings.HasPrefix(aws.ToString(u.Key), p) {
				continue
			}
			mu := MultipartUpload{Key: strings.TrimPrefix(aws.ToString(u.Key), s.prefix),
				UploadID: aws.ToString(u.UploadId), Initiated: aws.ToTime(u.Initiated)}
			if err := fn(mu); err != nil {
				return err
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			return nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// AbortUpload discards an unfinished multipart upload.
func (s *S3) AbortUpload(ctx context.Context, u MultipartUpload) error {
	k, err := s.objectKey(u.Key)
	if err != nil {
		return err
	}
	_, err = s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: &k, UploadId: &u.UploadID})
	if err != nil {
		return s.s3Err("abort upload of", u.Key, err)
	}
	return nil
}

// AbortUploads aborts the unfinished multipart uploads of the warehouse
// begun before before (killed imports and runs leave them), or with
// dryRun only lists them, and returns their keys, sorted.
func (s *S3) AbortUploads(ctx context.Context, before time.Time, dryRun bool) ([]string, error) {
	var stale []MultipartUpload
	err := s.ListUploads(ctx, "", func(u MultipartUpload) error {
		if u.Initiated.Before(before) {
			stale = append(stale, u)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(stale))
	for _, u := range stale {
		if !dryRun {
			if err := s.AbortUpload(ctx, u); err != nil {
				return keys, err
			}
		}
		keys = append(keys, u.Key)
	}
	sort.Strings(keys)
	return keys, nil
}

type s3Writer struct {
	ctx       context.Context
	s         *S3
	key, okey string

	mu       sync.Mutex
	buf      []byte
	uploadID string
	parts    []types.CompletedPart
	err      error
	done     bool
}

func (w *s3Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	if w.done {
		return 0, errdefs.New(errdefs.ErrFailedPrecondition, "write %s: the writer is closed", w.key)
	}
	n := len(p)
	for len(p) > 0 {
		room := int(w.s.partSize) - len(w.buf)
		if room > len(p) {
			room = len(p)
		}
		w.buf = append(w.buf, p[:room]...)
		p = p[room:]
		if int64(len(w.buf)) >= w.s.partSize {
			if err := w.flushPart(); err != nil {
				w.err = err
				return n - len(p), err
			}
		}
	}
	return n, nil
}

func (w *s3Writer) ReadFrom(r io.Reader) (int64, error) {
	buf := make([]byte, 1<<20)
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// flushPart uploads the buffer as the next part, starting the upload.
func (w *s3Writer) flushPart() error {
	if w.uploadID == "" {
		out, err := w.s.client.CreateMultipartUpload(w.ctx, &s3.CreateMultipartUploadInput{Bucket: &w.s.bucket, Key: &w.okey})
		if err != nil {
			return w.s.s3Err("upload", w.key, err)
		}
		w.uploadID = aws.ToString(out.UploadId)
	}
	num := int32(len(w.parts) + 1)
	out, err := w.s.client.UploadPart(w.ctx, &s3.UploadPartInput{Bucket: &w.s.bucket, Key: &w.okey,
		UploadId: &w.uploadID, PartNumber: &num, Body: bytes.NewReader(w.buf)})
	if err != nil {
		return w.s.s3Err("upload", w.key, err)
	}
	w.parts = append(w.parts, types.CompletedPart{ETag: out.ETag, PartNumber: &num,
		ChecksumCRC32: out.ChecksumCRC32, ChecksumCRC32C: out.ChecksumCRC32C,
		ChecksumCRC64NVME: out.ChecksumCRC64NVME, ChecksumSHA1: out.ChecksumSHA1, ChecksumSHA256: out.ChecksumSHA256})
	w.buf = w.buf[:0]
	return nil
}

func (w *s3Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return w.err
	}
	if w.err != nil {
		w.abortLocked()
		return w.err
	}
	w.done = true
	if w.uploadID == "" {
		_, err := w.s.client.PutObject(w.ctx, &s3.PutObjectInput{Bucket: &w.s.bucket, Key: &w.okey,
			Body: bytes.NewReader(w.buf), IfNoneMatch: aws.String("*")})
		w.buf = nil
		if err != nil {
			w.err = w.s.s3Err("write", w.key, err)
		}
		return w.err
	}
	if len(w.buf) > 0 {
		if err := w.flushPart(); err != nil {
			w.err = err
			w.abortLocked()
			return err
		}
	}
	_, err := w.s.client.CompleteMultipartUpload(w.ctx, &s3.CompleteMultipartUploadInput{Bucket: &w.s.bucket, Key: &w.okey,
		UploadId: &w.uploadID, MultipartUpload: &types.CompletedMultipartUpload{Parts: w.parts}, IfNoneMatch: aws.String("*")})
	w.buf = nil
	if err != nil {
		w.err = w.s.s3Err("write", w.key, err)
		w.abortLocked()
	}
	return w.err
}

func (w *s3Writer) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done && w.err == nil {
		return nil
	}
	w.done = true
	return w.abortLocked()
}

// abortLocked discards the multipart upload, if any. Uploads a crash
// leaves behind are found by ListUploads.
func (w *s3Writer) abortLocked() error {
	w.done, w.buf = true, nil
	if w.uploadID == "" {
		return nil
	}
	id := w.uploadID
	w.uploadID = ""
	_, err := w.s.client.AbortMultipartUpload(context.WithoutCancel(w.ctx), &s3.AbortMultipartUploadInput{Bucket: &w.s.bucket, Key: &w.okey, UploadId: &id})
	if err != nil {
		return w.s.s3Err("abort upload of", w.key, err)
	}
	return nil
}
