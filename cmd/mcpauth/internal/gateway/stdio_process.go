package gateway

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"os/exec"
	"sync"
	"time"
)

// maxStdioLine bounds one message from a stdio server; a longer line ends
// the process (it broke the framing).
const maxStdioLine = 32 << 20

// process is one running stdio server. Its stdout is read line by line
// (each line one JSON-RPC message, handed to onMessage in order) and its
// stderr goes to the log; onExit runs once both have ended and the process
// has been waited for.
type process struct {
	cmd   *exec.Cmd
	pid   int
	stdin io.WriteCloser
	wmu   sync.Mutex
	done  chan struct{}
	err   error // exit status, once done
	log   *slog.Logger
}

func startProcess(cfg StdioConfig, env []string, log *slog.Logger, onMessage func(*process, message), onExit func(*process)) (*process, error) {
	cmd := exec.Command(cfg.Command[0], cfg.Command[1:]...)
	cmd.Env = env
	cmd.Dir = cfg.Dir
	cmd.SysProcAttr = procAttr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, pid: cmd.Process.Pid, stdin: stdin, done: make(chan struct{})}
	p.log = log.With(slog.Int("pid", p.pid))
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); p.readStdout(stdout, onMessage) }()
	go func() { defer readers.Done(); p.readStderr(stderr) }()
	go func() {
		readers.Wait()
		p.err = cmd.Wait()
		close(p.done)
		onExit(p)
	}()
	return p, nil
}

func (p *process) readStdout(r io.Reader, onMessage func(*process, message)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxStdioLine)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		m, err := parseMessage(line)
		if err != nil {
			p.log.Warn("stdio server wrote a line that is not a JSON-RPC message; dropped", slog.Int("bytes", len(line)))
			continue
		}
		onMessage(p, m)
	}
	if err := sc.Err(); err != nil {
		p.log.Error("stdio server output unreadable: stopping it", slog.String("error", err.Error()))
		killGroup(p.cmd)
		_, _ = io.Copy(io.Discard, r)
	}
}

// readStderr logs each stderr line (at most 4 KiB of it) at Info.
func (p *process) readStderr(r io.Reader) {
	br := bufio.NewReaderSize(r, 4<<10)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			text := string(trimNewline(line))
			if errors.Is(err, bufio.ErrBufferFull) {
				text += "…"
				for errors.Is(err, bufio.ErrBufferFull) { // drop the rest of the line
					_, err = br.ReadSlice('\n')
				}
			}
			if text != "" {
				p.log.Info("stdio server stderr", slog.String("line", text))
			}
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

var errProcessExited = errors.New("the stdio server has exited")

// write sends one message line.
func (p *process) write(raw []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	select {
	case <-p.done:
		return errProcessExited
	default:
	}
	if _, err := p.stdin.Write(append(raw[:len(raw):len(raw)], '\n')); err != nil {
		return errProcessExited
	}
	return nil
}

// stop ends the process: stdin closed, then SIGTERM to its process group,
// then SIGKILL, each after grace; it returns once the process is gone.
func (p *process) stop(grace time.Duration) {
	p.wmu.Lock()
	_ = p.stdin.Close()
	p.wmu.Unlock()
	if p.waitFor(grace) {
		return
	}
	termGroup(p.cmd)
	if p.waitFor(grace) {
		return
	}
	p.log.Warn("stdio server ignored SIGTERM: killing it")
	killGroup(p.cmd)
	<-p.done
}

func (p *process) waitFor(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// exitText describes how the process ended, for the error a waiting
// request gets.
func (p *process) exitText() string {
	if p.err == nil {
		return "exit status 0"
	}
	return p.err.Error()
}
