//go:build !linux

package envcache

func spreadSubdirs(string) {}
