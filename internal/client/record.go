package client

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/witnessnet/witnessnet/internal/verify/intoto"
)

// DigestSet is an in-toto artifact digest set: algorithm -> hex.
type DigestSet = intoto.DigestSet

// RecordOptions shape how artifacts are named, as in-toto's run does.
type RecordOptions struct {
	Exclude []string // glob patterns (path.Match on the artifact name or any of its parent directories)
	Lstrip  []string // prefixes removed from artifact names
}

// RecordArtifacts hashes every regular file under the given paths (directories are walked, symlinks
// are followed to files) and names each by its slash-separated path as given, minus an lstrip prefix.
// Two files that end up with the same name are an error, not a silent overwrite.
func RecordArtifacts(paths []string, opts RecordOptions) (map[string]DigestSet, error) {
	out := map[string]DigestSet{}
	for _, p := range paths {
		err := filepath.WalkDir(p, func(file string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := filepath.ToSlash(filepath.Clean(file))
			if excluded(name, opts.Exclude) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				return nil
			}
			st, err := os.Stat(file)
			if err != nil {
				return err
			}
			if !st.Mode().IsRegular() {
				return nil
			}
			sum, err := hashFile(file)
			if err != nil {
				return err
			}
			for _, pre := range opts.Lstrip {
				if s, ok := strings.CutPrefix(name, pre); ok {
					name = s
					break
				}
			}
			if _, dup := out[name]; dup {
				return fmt.Errorf("two artifacts are named %q (check --lstrip-paths)", name)
			}
			out[name] = DigestSet{"sha256": sum}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("record %s: %w", p, err)
		}
	}
	return out, nil
}

func excluded(name string, patterns []string) bool {
	for _, pat := range patterns {
		for n := name; n != "." && n != "/" && n != ""; n = path.Dir(n) {
			if ok, _ := path.Match(pat, n); ok {
				return true
			}
			if ok, _ := path.Match(pat, path.Base(n)); ok {
				return true
			}
			if !strings.Contains(n, "/") {
				break
			}
		}
	}
	return false
}

func hashFile(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// RunStep runs a step's command, passing its output through to ours as well, and returns in-toto
// byproducts: stdout, stderr and the return value. A command that cannot start is an error; one that
// exits non-zero is recorded, as in-toto does, and reported to the caller through the return value.
//
// The command runs in dir ("" for the current directory).
func RunStep(dir string, argv []string, stdout, stderr io.Writer) (map[string]any, int, error) {
	if len(argv) == 0 {
		return map[string]any{}, 0, nil
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout = io.MultiWriter(&outBuf, stdout)
	cmd.Stderr = io.MultiWriter(&errBuf, stderr)
	err := cmd.Run()
	code := 0
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	case err != nil:
		return nil, 0, fmt.Errorf("run %s: %w", argv[0], err)
	}
	return map[string]any{"stdout": outBuf.String(), "stderr": errBuf.String(), "return-value": code}, code, nil
}
