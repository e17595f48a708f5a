package process

// NewWithSupport is New on a machine that offers s instead of what Probe
// finds: tests take the paths of machines they do not run on (not root,
// Landlock alone).
func NewWithSupport(cfg Config, s Support) *Launcher {
	l := New(cfg)
	l.support = func() Support { return s }
	return l
}
