package query

import (
	"reflect"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// plainExt is an extension type whose arrays do not render themselves
// (arrow-go's ExtensionArrayBase.ValueStr panics), as a type the client
// does not know arrives from a server.
type plainExt struct{ arrow.ExtensionBase }

type plainExtArray struct{ array.ExtensionArrayBase }

func (plainExt) ExtensionName() string   { return "test.plain" }
func (plainExt) Serialize() string       { return "" }
func (plainExt) ArrayType() reflect.Type { return reflect.TypeOf(plainExtArray{}) }
func (e plainExt) ExtensionEquals(o arrow.ExtensionType) bool {
	return o.ExtensionName() == e.ExtensionName()
}
func (plainExt) Deserialize(storage arrow.DataType, _ string) (arrow.ExtensionType, error) {
	return &plainExt{arrow.ExtensionBase{Storage: storage}}, nil
}

// TestFormatExtension: a cell of an extension type that cannot render
// itself is rendered from its storage, not a panic.
func TestFormatExtension(t *testing.T) {
	b := array.NewStringBuilder(memory.DefaultAllocator)
	b.AppendValues([]string{"x"}, nil)
	b.AppendNull()
	storage := b.NewArray()
	defer storage.Release()
	a := array.NewExtensionArrayWithStorage(&plainExt{arrow.ExtensionBase{Storage: arrow.BinaryTypes.String}}, storage)
	defer a.Release()
	if got := FormatValue(a, 0); got != "x" {
		t.Errorf("cell 0: %q", got)
	}
	if got := FormatValue(a, 1); got != "" {
		t.Errorf("null cell: %q", got)
	}
}
