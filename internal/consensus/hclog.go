package consensus

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// HCLog adapts an slog.Logger to hclog.Logger, the interface raft logs through. It is the one
// hclog adapter in witnessnet.
func HCLog(l *slog.Logger, name string) hclog.Logger {
	return &hcAdapter{l: l.With("component", name), name: name}
}

type hcAdapter struct {
	l       *slog.Logger
	name    string
	implied []any
}

var _ hclog.Logger = (*hcAdapter)(nil)

func toSlog(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace, hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func (a *hcAdapter) Log(level hclog.Level, msg string, args ...any) {
	for i, v := range args {
		if f, ok := v.(hclog.Format); ok && len(f) > 0 {
			if s, ok := f[0].(string); ok {
				args[i] = fmt.Sprintf(s, f[1:]...)
			}
		}
	}
	a.l.Log(context.Background(), toSlog(level), msg, args...)
}
func (a *hcAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *hcAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *hcAdapter) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *hcAdapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *hcAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }
func (a *hcAdapter) enabled(l hclog.Level) bool {
	return a.l.Enabled(context.Background(), toSlog(l))
}
func (a *hcAdapter) IsTrace() bool         { return a.enabled(hclog.Trace) }
func (a *hcAdapter) IsDebug() bool         { return a.enabled(hclog.Debug) }
func (a *hcAdapter) IsInfo() bool          { return a.enabled(hclog.Info) }
func (a *hcAdapter) IsWarn() bool          { return a.enabled(hclog.Warn) }
func (a *hcAdapter) IsError() bool         { return a.enabled(hclog.Error) }
func (a *hcAdapter) ImpliedArgs() []any    { return a.implied }
func (a *hcAdapter) Name() string          { return a.name }
func (a *hcAdapter) SetLevel(hclog.Level)  {}
func (a *hcAdapter) GetLevel() hclog.Level { return hclog.Info }
func (a *hcAdapter) Named(n string) hclog.Logger {
	return &hcAdapter{l: a.l.With("sub", n), name: a.name + "." + n, implied: a.implied}
}
func (a *hcAdapter) ResetNamed(n string) hclog.Logger {
	return &hcAdapter{l: a.l, name: n, implied: a.implied}
}
func (a *hcAdapter) With(args ...any) hclog.Logger {
	return &hcAdapter{l: a.l.With(args...), name: a.name, implied: append(append([]any{}, a.implied...), args...)}
}
func (a *hcAdapter) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return slog.NewLogLogger(a.l.Handler(), slog.LevelInfo)
}
func (a *hcAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return a.StandardLogger(nil).Writer()
}
