package envcache

// WalkStamp exposes the stamp of a package folder to tests and benchmarks.
func WalkStamp(dir string) (string, error) {
	_, stamp, err := walkStamp(dir)
	return stamp, err
}
