package restcatalog_test

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog/restcatalog"
)

// panicTables panics reading metadata, as a bug reached by a request
// would.
type panicTables struct{ restcatalog.Tables }

func (panicTables) ReadMetadata(context.Context, string) ([]byte, error) { panic("a bug") }

// A panic serving a request is a 500 in the Iceberg error shape, and the
// handler goes on serving.
func TestHandlerPanicIs500(t *testing.T) {
	hs := newHarness(t, nil)
	h, err := restcatalog.New(restcatalog.Options{Catalog: hs.svc, Tables: panicTables{hs.format}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	log.SetOutput(io.Discard) // the stack the handler logs
	defer log.SetOutput(os.Stderr)
	for range 2 {
		resp, err := http.Get(srv.URL + "/iceberg/main/v1/main/namespaces/sales/tables/orders")
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error struct {
				Code    int
				Type    string
				Message string
			} `json:"error"`
		}
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 500 || e.Error.Code != 500 || !strings.Contains(e.Error.Message, "bug of the server") {
			t.Fatalf("status %d, body %+v (%v)", resp.StatusCode, e, err)
		}
	}
	resp, err := http.Get(srv.URL + "/iceberg/main/v1/config")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("config after the panics: %v %v", resp, err)
	}
	resp.Body.Close()
}
