package flight

import "time"

// Imports of client files. The client sends each file with DoPut, its
// rows as Arrow batches, under a CMD descriptor holding an UploadCommand;
// the server stages the batches as an Arrow IPC file in Options.UploadDir
// and answers one PutResult whose app metadata is an UploadResult. An
// ActionImportTable whose sources are "upload:<id>" then imports the
// staged files (ImportBody, ImportResult). See docs/protocol.md.

// ActionDiscardUploads removes uploads no import will name (a client
// whose import failed before its ImportTable).
const ActionDiscardUploads = ActionPrefix + "DiscardUploads" // DiscardUploadsBody → {}

// ActionCheckImport answers the error an ImportTable of the body would
// give before its files are read (its sources are ignored): a client
// sends it first, so that an import to a branch that does not exist, a
// missing namespace or a refused branch fails as in embedded mode, before
// any file is read or sent.
const ActionCheckImport = ActionPrefix + "CheckImport" // ImportBody → {}

// DiscardUploadsBody names uploads of the caller by id; unknown ids are
// ignored.
type DiscardUploadsBody struct {
	Uploads []string `json:"uploads"`
}

// UploadSourcePrefix starts an ImportBody source naming an upload.
const UploadSourcePrefix = "upload:"

// Defaults of the uploads a server stages.
const (
	// DefaultMaxUploadBytes bounds the Arrow IPC files staged at once,
	// across clients.
	DefaultMaxUploadBytes = 16 << 30
	// DefaultUploadTTL is how long an upload waits for its import.
	DefaultUploadTTL = time.Hour
)

// UploadCommand is the FlightDescriptor command of a DoPut.
type UploadCommand struct {
	Upload *Upload `json:"upload"`
}

// Upload names the file a DoPut sends: the client's path, size and
// modification time, which identify it in the table's import history (a
// file imported before with the same three is skipped). A pyarrow.Table
// is "<table>" with size 0 and the time of the upload as mtime, never
// taken for data imported before.
type Upload struct {
	Name    string `json:"name"`
	Size    int64  `json:"size"`
	MtimeNs int64  `json:"mtime_ns"`
	// Format is "" for columns of the file's own types, or "csv" for a
	// CSV file sent as text: one string column per CSV column, named by
	// its header, NULL for an empty field. The server then infers and
	// parses the column types exactly as it does for a CSV file of its
	// own (catalog.StagedCSV).
	Format string `json:"format,omitempty"`
}

// UploadResult is the app metadata of a DoPut's PutResult.
type UploadResult struct {
	UploadID string `json:"upload_id"`
	Rows     int64  `json:"rows"`
	// Bytes is the size of the staged Arrow IPC file.
	Bytes int64 `json:"bytes"`
}
