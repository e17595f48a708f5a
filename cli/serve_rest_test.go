package cli

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/lakehouse-dev/lakehouse/runtime/launchers"
)

// TestServeMountsIcebergREST: `lakehouse serve` answers the Iceberg REST
// catalog under /iceberg/<ref> on its HTTP listener, with the catalog's
// own table states.
func TestServeMountsIcebergREST(t *testing.T) {
	served := newLakehouseEnv(t, launchers.Process, "")
	remote, stop := serveRunsInProcess(t, served)
	defer stop()
	base := "http://" + remote.env[envTestHTTP] + "/iceberg/tester.dev"
	get := func(url string, v any) int {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		return resp.StatusCode
	}
	var cfg struct {
		Defaults map[string]string `json:"defaults"`
	}
	if st := get(base+"/v1/config", &cfg); st != 200 || cfg.Defaults["prefix"] != "tester.dev" {
		t.Fatalf("config: %d %v", st, cfg)
	}
	var loaded struct {
		Location string `json:"metadata-location"`
	}
	if st := get(base+"/v1/tester.dev/namespaces/sales/tables/transactions", &loaded); st != 200 {
		t.Fatalf("load table: %d", st)
	}
	var ls []struct {
		Name     string `json:"name"`
		Metadata string `json:"metadata_location"`
	}
	if err := json.Unmarshal([]byte(remote.mustLH("-O", "json", "table", "ls", "-r", "tester.dev")), &ls); err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || ls[0].Metadata != loaded.Location {
		t.Fatalf("REST serves %s, table ls says %+v", loaded.Location, ls)
	}
	resp, err := http.Post(strings.Replace(base, "tester.dev", "main", 1)+"/v1/main/namespaces", "application/json",
		strings.NewReader(`{"namespace":["x"]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a write to main: %d", resp.StatusCode)
	}
}
