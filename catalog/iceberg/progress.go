package iceberg

import "github.com/lakehouse-dev/lakehouse/catalog"

// progress tells an import's caller how far it has read its input. A nil
// *progress, or one without a report func, does nothing.
type progress struct {
	report func(catalog.ImportProgress)
	cur    catalog.ImportProgress
	// done is the input bytes of the files read to their end.
	done int64
}

func newProgress(report func(catalog.ImportProgress), files []sourceFile) *progress {
	if report == nil {
		return nil
	}
	p := &progress{report: report}
	for _, f := range files {
		p.cur.TotalBytes += f.fileSize
	}
	p.report(p.cur)
	return p
}

// read counts rows more rows of src, whose probe counted its rows, of
// which fileRows are now read: bytes within a file are estimated by its
// share of rows.
func (p *progress) read(rows int64, src sourceFile, pb *probe, fileRows int64) {
	if p == nil {
		return
	}
	p.cur.Rows += rows
	switch {
	case pb.rows <= 0: // no count to estimate by
	case fileRows >= pb.rows:
		p.done += src.fileSize
		p.cur.Bytes = p.done
	default:
		p.cur.Bytes = p.done + int64(float64(src.fileSize)*float64(fileRows)/float64(pb.rows))
	}
	p.report(p.cur)
}
