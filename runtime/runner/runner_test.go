package runner

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The marshal encoding is read back by a real interpreter. Parameters are
// JSON values: nested 3.0 arrives as 3, as after a JSON round trip.
func TestEncodeReadByPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		ms, _ := filepath.Glob("/root/.pyenv/versions/3.*/bin/python3")
		if len(ms) == 0 {
			t.Fatal("no python3")
		}
		py = ms[0]
	}
	c := Config{CodeDir: "/code", Module: "m", Function: "f", Paths: []string{"/a", "/b é"},
		Inputs: []Input{{Arg: "data", Path: "/dev/shm/x.arrow"}},
		Params: map[string]any{"i": 7, "neg": -3, "big": int64(1) << 40, "nbig": -(int64(1) << 50), "f": 2.5,
			"s": "ü\n\"x\"", "b": true, "n": nil, "l": []any{1, "two", 3.0}, "m": map[string]any{"k": []string{"v"}},
			"u8": uint8(3)},
		Result: "/r.json"}
	enc, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "-I", "-S", "-c", `import marshal, sys
c = marshal.loads(bytes.fromhex(sys.argv[1]))
print(sorted(c["params"].items()), c["paths"], c["inputs"], c["output"])`, enc).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := `[('b', True), ('big', 1099511627776), ('f', 2.5), ('i', 7), ('l', [1, 'two', 3]), ('m', {'k': ['v']}), ('n', None), ('nbig', -1125899906842624), ('neg', -3), ('s', 'ü\n"x"'), ('u8', 3)] ['/a', '/b é'] [{'arg': 'data', 'path': '/dev/shm/x.arrow'}] `
	if strings.TrimSpace(string(out)) != strings.TrimSpace(want) {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
}
