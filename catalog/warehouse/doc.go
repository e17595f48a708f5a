// Package warehouse is the object storage under the catalog's tables: a
// local directory (file:///path) or a prefix of an S3 bucket
// (s3://bucket/prefix, also MinIO and other compatibles through an
// endpoint and path-style addressing).
//
// Objects are addressed by keys relative to the warehouse root
// ("sales/orders-<uuid>/data/<uuid>.parquet"); table metadata records
// their locations as URIs, which Storage.URI and Storage.Key convert.
//
// # Invariants
//
// Objects are written once: Create refuses an existing key (O_EXCL-like
// link on a local disk, If-None-Match: * on S3), and a writer's object
// becomes visible only when Close succeeds. An object written by a process
// that dies mid-write is never visible: a local temporary file (whose name
// holds ".lakehouse-tmp-", skipped by List) or an unfinished multipart
// upload (S3.ListUploads) remains for garbage collection.
//
// # Caveats
//
// A local warehouse's ETag is its size and modification time, not a
// content hash. S3 credentials and region come from the standard AWS chain;
// an endpoint without a region uses us-east-1.
package warehouse
