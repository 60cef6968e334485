package consensus

import "os"

func osWriteFile(path string, data []byte) error { return os.WriteFile(path, data, 0o600) }
func rename(a, b string) error                   { return os.Rename(a, b) }
