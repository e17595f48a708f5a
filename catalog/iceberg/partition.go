package iceberg

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

const partitionHint = "write a partition field as col, identity(col), year(col), month(col), day(col), hour(col), bucket(N,col) or truncate(W,col)"

// partitionField is a parsed --partitioned-by field, not yet bound to a
// schema.
type partitionField struct {
	transform iceberg.Transform
	column    string
}

// parsePartitionField parses one partition field: "col", "identity(col)",
// "year(col)", "month(col)", "day(col)", "hour(col)", "bucket(N,col)" or
// "truncate(W,col)". Transform names are case-insensitive and may be plural
// ("days(ts)"), spaces around names and arguments are ignored. Errors are
// ErrInvalidArgument.
func parsePartitionField(s string) (partitionField, error) {
	bad := func(format string, args ...any) (partitionField, error) {
		return partitionField{}, errdefs.WithHint(errdefs.ErrInvalidArgument, partitionHint,
			"invalid partition field %q: "+format, append([]any{s}, args...)...)
	}
	t := strings.TrimSpace(s)
	open := strings.IndexByte(t, '(')
	if open < 0 {
		if !validPartitionColumn(t) {
			return bad("it is not a column name")
		}
		return partitionField{transform: iceberg.IdentityTransform{}, column: t}, nil
	}
	if !strings.HasSuffix(t, ")") {
		return bad("missing closing parenthesis")
	}
	name := strings.ToLower(strings.TrimSpace(t[:open]))
	args := strings.Split(t[open+1:len(t)-1], ",")
	for i := range args {
		args[i] = strings.TrimSpace(args[i])
	}
	var tr iceberg.Transform
	switch name {
	case "identity":
		tr = iceberg.IdentityTransform{}
	case "year", "years":
		tr = iceberg.YearTransform{}
	case "month", "months":
		tr = iceberg.MonthTransform{}
	case "day", "days":
		tr = iceberg.DayTransform{}
	case "hour", "hours":
		tr = iceberg.HourTransform{}
	case "bucket", "truncate":
		if len(args) != 2 {
			return bad("%s takes two arguments, %s(N,col)", name, name)
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 1 || n > math.MaxInt32 {
			return bad("%s needs a positive whole number as its first argument, not %q", name, args[0])
		}
		if name == "bucket" {
			tr = iceberg.BucketTransform{NumBuckets: n}
		} else {
			tr = iceberg.TruncateTransform{Width: n}
		}
		args = args[1:]
	case "":
		return bad("missing transform name before '('")
	default:
		return bad("unknown transform %q", name)
	}
	if len(args) != 1 {
		return bad("%s takes one column", name)
	}
	if !validPartitionColumn(args[0]) {
		return bad("%q is not a column name", args[0])
	}
	return partitionField{transform: tr, column: args[0]}, nil
}

// validPartitionColumn reports whether s can name a column in a partition
// field (the grammar's delimiters are not allowed in it).
func validPartitionColumn(s string) bool {
	return s != "" && !strings.ContainsAny(s, "(),") && strings.TrimSpace(s) == s
}

// partitionName is the name of the partition field for transform tr of col,
// following Iceberg's conventions (ts_day, id_bucket, name_trunc).
func partitionName(tr iceberg.Transform, col string) string {
	switch tr.(type) {
	case iceberg.IdentityTransform:
		return col
	case iceberg.YearTransform:
		return col + "_year"
	case iceberg.MonthTransform:
		return col + "_month"
	case iceberg.DayTransform:
		return col + "_day"
	case iceberg.HourTransform:
		return col + "_hour"
	case iceberg.BucketTransform:
		return col + "_bucket"
	case iceberg.TruncateTransform:
		return col + "_trunc"
	}
	return col + "_" + tr.String()
}

// partitionSpec builds the partition spec of a new table with schema sc from
// --partitioned-by fields.
func partitionSpec(sc *iceberg.Schema, fields []string) (*iceberg.PartitionSpec, error) {
	if len(fields) == 0 {
		return iceberg.UnpartitionedSpec, nil
	}
	var opts []iceberg.PartitionOption
	names := map[string]string{}
	for _, s := range fields {
		pf, err := parsePartitionField(s)
		if err != nil {
			return nil, err
		}
		col, ok := sc.FindFieldByName(pf.column)
		if !ok {
			var cols []string
			for _, f := range sc.Fields() {
				cols = append(cols, f.Name)
			}
			return nil, errdefs.WithHint(errdefs.ErrInvalidArgument, "the table's columns are "+strings.Join(cols, ", "),
				"unknown partition column %q in %q", pf.column, s)
		}
		if !pf.transform.CanTransform(col.Type) {
			return nil, errdefs.New(errdefs.ErrInvalidArgument,
				"invalid partition field %q: %s cannot be applied to column %q of type %s", s, pf.transform, col.Name, col.Type)
		}
		name := partitionName(pf.transform, col.Name)
		if prev, dup := names[name]; dup {
			return nil, errdefs.New(errdefs.ErrInvalidArgument,
				"partition fields %q and %q both define partition %q", prev, s, name)
		}
		names[name] = s
		opts = append(opts, iceberg.AddPartitionFieldByName(col.Name, name, pf.transform, sc, nil))
	}
	spec, err := iceberg.NewPartitionSpecOpts(opts...)
	if err != nil {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "invalid partition spec %s: %v", strings.Join(fields, ", "), err)
	}
	return &spec, nil
}

// overwrittenFiles returns the data files of the current snapshot of md
// whose partition, under the table's current spec, holds any of the added
// files' rows: the files a dynamic partition overwrite replaces. It fails
// with ErrFailedPrecondition if a data file was written under another
// spec, whose partitions cannot be compared.
func overwrittenFiles(fs iceio.IO, md table.Metadata, added []iceberg.DataFile) ([]iceberg.DataFile, error) {
	spec := md.PartitionSpec()
	keys := map[string]bool{}
	for _, df := range added {
		keys[partitionKey(&spec, df.Partition())] = true
	}
	if len(keys) == 0 {
		return nil, nil
	}
	live, err := liveDataFiles(fs, md.CurrentSnapshot())
	if err != nil {
		return nil, err
	}
	var out []iceberg.DataFile
	for _, df := range live {
		if int(df.SpecID()) != spec.ID() {
			return nil, errdefs.WithHint(errdefs.ErrFailedPrecondition, "replace the whole table with --mode replace",
				"data file %s was written under partition spec %d, not the table's current spec %d: overwrite-partitions cannot compare their partitions",
				df.FilePath(), df.SpecID(), spec.ID())
		}
		if keys[partitionKey(&spec, df.Partition())] {
			out = append(out, df)
		}
	}
	return out, nil
}

// partitionKey renders a partition tuple (values by partition field id) as
// a string equal for equal tuples. Values compare by kind, not Go type: a
// manifest may decode a day as iceberg.Date where the writer held an int32.
func partitionKey(spec *iceberg.PartitionSpec, vals map[int]any) string {
	var b strings.Builder
	for _, pf := range spec.Fields() {
		b.WriteString(partitionValueKey(vals[pf.FieldID]))
		b.WriteByte(0)
	}
	return b.String()
}

func partitionValueKey(v any) string {
	if v == nil {
		return "null"
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "i" + strconv.FormatInt(rv.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "i" + strconv.FormatUint(rv.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		return "f" + strconv.FormatFloat(rv.Float(), 'g', -1, 64)
	case reflect.String:
		return "s" + rv.String()
	case reflect.Bool:
		return "b" + strconv.FormatBool(rv.Bool())
	case reflect.Slice:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return "x" + string(rv.Bytes())
		}
	}
	return fmt.Sprintf("o%T:%v", v, v)
}
