package arrowipc

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
)

// validateBatch checks a batch read from a file before anything reads its
// values: arrow-go's compute kernels run on goroutines of their own, and
// DuckDB reads batches in C, where a corrupt offset, bitmap or dictionary
// index would crash the process instead of failing the read.
func validateBatch(rec arrow.RecordBatch) error {
	for i, c := range rec.Columns() {
		if int64(c.Len()) != rec.NumRows() {
			return fmt.Errorf("column %d has %d rows, the batch %d", i, c.Len(), rec.NumRows())
		}
		if err := validateArray(c); err != nil {
			return fmt.Errorf("column %q: %w", rec.ColumnName(i), err)
		}
	}
	return nil
}

// validateArray checks an array and its children: its validity bitmap
// against its null count, the size of its values buffer, its offsets or
// views (ValidateFull), its decimals against their precision and its
// dictionary indices against the dictionary.
func validateArray(a arrow.Array) error {
	d := a.Data()
	if d.DataType().ID() == arrow.NULL {
		return nil
	}
	n := d.Offset() + d.Len()
	bufs := d.Buffers()
	if len(bufs) > 0 && bufs[0] != nil && bufs[0].Len() > 0 {
		if bufs[0].Len()*8 < n {
			return fmt.Errorf("validity bitmap of %d bytes for %d values", bufs[0].Len(), n)
		}
		if nulls := d.Len() - bitutil.CountSetBits(bufs[0].Bytes(), d.Offset(), d.Len()); nulls != a.NullN() {
			return fmt.Errorf("%d nulls in the validity bitmap, %d in the field node", nulls, a.NullN())
		}
	} else if a.NullN() != 0 {
		return fmt.Errorf("%d nulls and no validity bitmap", a.NullN())
	}
	if fw, ok := a.DataType().(arrow.FixedWidthDataType); ok && a.DataType().ID() != arrow.DICTIONARY {
		need := n * (fw.BitWidth() / 8)
		if fw.BitWidth() < 8 {
			need = (n*fw.BitWidth() + 7) / 8
		}
		if len(bufs) < 2 || (n > 0 && (bufs[1] == nil || bufs[1].Len() < need)) {
			return fmt.Errorf("data buffer too short for %d values of %s", n, a.DataType())
		}
	}
	if v, ok := a.(interface{ ValidateFull() error }); ok {
		if err := v.ValidateFull(); err != nil {
			return err
		}
	}
	switch a := a.(type) {
	case *array.Decimal32:
		return decimalsFit(a, a.Values())
	case *array.Decimal64:
		return decimalsFit(a, a.Values())
	case *array.Decimal128:
		return decimalsFit(a, a.Values())
	case *array.Dictionary:
		if err := validateArray(a.Indices()); err != nil {
			return err
		}
		if err := validateArray(a.Dictionary()); err != nil {
			return err
		}
		size := a.Dictionary().Len()
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				if j := a.GetValueIndex(i); j < 0 || j >= size {
					return fmt.Errorf("dictionary index %d out of range (%d values)", j, size)
				}
			}
		}
		return nil
	}
	for i, c := range d.Children() {
		err := func() error {
			child := array.MakeFromData(c)
			defer child.Release()
			return validateArray(child)
		}()
		if err != nil {
			return fmt.Errorf("child %d: %w", i, err)
		}
	}
	return nil
}

// decimalsFit checks that every decimal of a fits its type's precision
// (which the file's layout has checked against the width).
func decimalsFit[T interface{ FitsInPrecision(int32) bool }](a arrow.Array, values []T) error {
	prec := a.DataType().(arrow.DecimalType).GetPrecision()
	for i, v := range values[:a.Len()] {
		if a.IsValid(i) && !v.FitsInPrecision(prec) {
			return fmt.Errorf("decimal at row %d does not fit precision %d", i, prec)
		}
	}
	return nil
}

// checkDecodedSize checks that no slice of window rows of a validated
// dictionary array decodes to more than limit bytes: a small dictionary
// repeated can stand for more data than memory holds.
func checkDecodedSize(a *array.Dictionary, window, limit int64) error {
	vals := a.Dictionary()
	size := func(int) int64 { return 0 }
	switch v := vals.(type) {
	case array.BinaryLike:
		size = func(j int) int64 { return int64(v.ValueLen(j)) }
	case array.ViewLike:
		size = func(j int) int64 { return int64(v.ValueHeader(j).Len()) }
	}
	width := int64(0)
	if fw, ok := vals.DataType().(arrow.FixedWidthDataType); ok {
		width = int64(fw.BitWidth()+7) / 8
	}
	window = max(window, 1)
	var sum int64
	for i := 0; i < a.Len(); i++ {
		if int64(i)%window == 0 {
			sum = 0
		}
		if a.IsValid(i) {
			sum += width + size(a.GetValueIndex(i))
		}
		if sum > limit {
			return fmt.Errorf("rows %d to %d decode to more than the %d bytes decoded at a time",
				int64(i)/window*window, min(int64(i)/window*window+window, int64(a.Len())), limit)
		}
	}
	return nil
}
