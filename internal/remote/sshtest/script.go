package sshtest

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// SFTPServer is where the scripted host says its sftp-server is. Starting it
// (as remote does, through sudo) serves the host's files from Server.Path.
const SFTPServer = "/usr/lib/openssh/sftp-server"

// Command is one command a scripted host was asked to run, as remote sends
// it: the line, and that line taken apart.
type Command struct {
	Line  string            // the exec request, as received
	As    string            // "" without sudo; "root", or the user of sudo -u
	Env   map[string]string // set with `env K=V` after sudo
	Args  []string          // the argv that runs, after sudo and env
	Stdin []byte            // what the client sent on stdin, once the command ended
	Ended bool              // the command has ended (its stdin was closed)
}

// String is Args joined by spaces, unquoted: what a Rule matches.
func (c *Command) String() string { return strings.Join(c.Args, " ") }

// Reply is how a scripted command answers.
type Reply struct {
	Stdout, Stderr string
	Exit           int
	// Hold has the command, once it printed Stdout and Stderr, read its
	// stdin to the end before it exits, as one ending in `cat >/dev/null`
	// does: a lock held for as long as the client keeps stdin open.
	Hold bool
	// NoStdin has Rules answer without reading stdin, as a command that
	// fails before it reads does.
	NoStdin bool
}

// Handler answers a command of a scripted host. What it reads of stdin is
// recorded in the Command; a command that does not Hold exits without
// waiting for the rest, as a real one that does not read stdin does. It is
// called concurrently for concurrent commands.
//
// Two kinds of command never reach it: Dial's `true` (answered with success)
// and remote's search for and start of the sftp-server (see SFTPServer).
type Handler func(c *Command, stdin io.Reader) Reply

// Rule answers the commands whose String matches Match.
type Rule struct {
	Match *regexp.Regexp
	Reply Reply
}

// On is a Rule for the commands matching the regular expression re, in
// which . matches a newline too: scripts span lines.
func On(re string, r Reply) Rule { return Rule{Match: regexp.MustCompile("(?s)" + re), Reply: r} }

// Rules is a Handler that answers with the first rule that matches, after
// reading stdin to the end unless the reply says Hold or NoStdin. A command
// that none matches fails at once with exit status 127 and a message naming
// it, as a shell does for a command it cannot find.
func Rules(rules ...Rule) Handler {
	return func(c *Command, stdin io.Reader) Reply {
		for _, r := range rules {
			if r.Match.MatchString(c.String()) {
				if !r.Reply.Hold && !r.Reply.NoStdin {
					io.Copy(io.Discard, stdin)
				}
				return r.Reply
			}
		}
		return Reply{Exit: 127, Stderr: fmt.Sprintf("sshtest: no rule for command: %s\n", c)}
	}
}

// Commands is every command the scripted host ran, in order, except the
// start of its sftp-server.
func (s *Server) Commands() []Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Command, len(s.commands))
	for i, c := range s.commands {
		out[i] = *c
	}
	return out
}

// handleScripted answers the session's command with the handler.
func (s *Server) handleScripted(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	started := false
	var done sync.WaitGroup
	defer done.Wait()
	for req := range reqs {
		switch {
		case req.Type == "exec" && !started:
			var p struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &p); err != nil {
				req.Reply(false, nil)
				continue
			}
			started = true
			c := parseCommand(p.Command)
			s.mu.Lock()
			s.execs = append(s.execs, p.Command)
			s.mu.Unlock()
			req.Reply(true, nil)
			done.Add(1)
			go func() { defer done.Done(); s.answer(ch, c) }()
		case req.Type == "subsystem" && !started:
			var p struct{ Name string }
			if err := ssh.Unmarshal(req.Payload, &p); err != nil || p.Name != "sftp" {
				req.Reply(false, nil)
				continue
			}
			started = true
			req.Reply(true, nil)
			done.Add(1)
			go func() { defer done.Done(); s.serveSFTP(ch) }()
		case req.Type == "signal":
			var p struct{ Signal string }
			ssh.Unmarshal(req.Payload, &p)
			s.mu.Lock()
			s.signals = append(s.signals, p.Signal)
			s.mu.Unlock()
			// A scripted command dies of any signal at once.
			sendExitSignal(ch, p.Signal)
			ch.CloseWrite()
			ch.Close()
		default:
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}
}

func (s *Server) answer(ch ssh.Channel, c *Command) {
	if len(c.Args) > 0 && c.Args[len(c.Args)-1] == SFTPServer && c.As == "root" {
		s.serveSFTP(ch)
		return
	}
	s.mu.Lock()
	s.commands = append(s.commands, c)
	s.mu.Unlock()

	var stdin bytes.Buffer
	in := io.TeeReader(ch, &stdin)
	var r Reply
	switch {
	case len(c.Args) == 1 && c.Args[0] == "true":
	case len(c.Args) >= 3 && c.Args[0] == "sh" && c.Args[1] == "-c" && strings.Contains(c.Args[2], `$2 == "sftp"`):
		r.Stdout = SFTPServer + "\n"
	default:
		r = s.handler(c, in)
	}
	io.WriteString(ch, r.Stdout)
	io.WriteString(ch.Stderr(), r.Stderr)
	if r.Hold {
		io.Copy(io.Discard, in)
	}
	s.mu.Lock()
	c.Stdin, c.Ended = stdin.Bytes(), true
	s.mu.Unlock()
	sendExitStatus(ch, r.Exit)
	ch.CloseWrite()
	ch.Close()
}

func (s *Server) serveSFTP(ch ssh.Channel) {
	srv := sftp.NewRequestServer(ch, s.sftpHandlers())
	srv.Serve()
	srv.Close()
	sendExitStatus(ch, 0)
	ch.Close()
}

// parseCommand takes apart a line quoted as remote.QuoteArgs quotes: words
// separated by spaces, single quotes, and backslash escapes outside them.
func parseCommand(line string) *Command {
	c := &Command{Line: line}
	var words []string
	var w strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		b := line[i]
		switch {
		case quoted && b == '\'':
			quoted = false
		case quoted:
			w.WriteByte(b)
		case b == '\'':
			quoted, inWord = true, true
		case b == '\\' && i+1 < len(line):
			i++
			w.WriteByte(line[i])
			inWord = true
		case b == ' ' || b == '\t' || b == '\n':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteByte(b)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	if len(words) > 0 && words[0] == "sudo" {
		c.As = "root"
		words = words[1:]
	flags:
		for len(words) > 0 {
			switch words[0] {
			case "-n", "-H":
				words = words[1:]
			case "-u":
				if len(words) > 1 {
					c.As = words[1]
				}
				words = words[min(2, len(words)):]
			case "--":
				words = words[1:]
				break flags
			default:
				break flags
			}
		}
	}
	if len(words) > 0 && words[0] == "env" {
		c.Env = map[string]string{}
		words = words[1:]
		for len(words) > 0 {
			k, v, ok := strings.Cut(words[0], "=")
			if !ok {
				break
			}
			c.Env[k] = v
			words = words[1:]
		}
	}
	c.Args = words
	return c
}
